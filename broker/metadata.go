package broker

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/spoolmq/spool/storage"
)

// Files of the broker's metadata (format).
//
// metaFileName, in the data directory, holds the cluster ID and every
// topic's name, ID, partition count and config overrides, as JSON, plus the
// tombstones of deleted topics whose logs may not all be removed yet. It is
// the source of truth for which topics exist. Start-up never deletes a log
// because the file does not name it: a log is removed only when a tombstone
// names its topic (written before the logs are removed) or when it never
// held a record (the leftover of an interrupted create). A data directory
// with partition logs and no metadata file, a log with records that the
// file does not name, and a partition the file names without its directory
// all stop the start with a message saying what to do.
//
// partMetaFileName, in every partition directory, repeats the topic's name,
// ID and config overrides, and the cluster ID, so that
// Config.RecoverMetadata (spool serve --recover-metadata) can rebuild the
// metadata file from the partition directories alone. The metadata file
// wins where they differ (a config change writes it first).
const (
	metaFileName     = "broker-meta.json"
	partMetaFileName = "topic-meta.json"
)

// metaFile is the on-disk form of the metadata file.
type metaFile struct {
	Version   int             `json:"version"` // format version, 1
	ClusterID string          `json:"cluster_id"`
	Topics    []metaTopic     `json:"topics"`
	Deleted   []metaTombstone `json:"deleted,omitempty"`
	// Dynamic broker configs (IncrementalAlterConfigs on a broker
	// resource): set on node 0, and cluster-wide defaults.
	BrokerConfigs  map[string]string `json:"broker_configs,omitempty"`
	ClusterConfigs map[string]string `json:"cluster_configs,omitempty"`
}

type metaTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"` // UUID
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// metaTombstone records a deleted topic until its logs are gone.
type metaTombstone struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Partitions int32  `json:"partitions"`
}

// partMeta is the on-disk form of partMetaFileName.
type partMeta struct {
	Version   int               `json:"version"` // format version, 1
	ClusterID string            `json:"cluster_id"`
	Topic     string            `json:"topic"`
	ID        string            `json:"id"`
	Configs   map[string]string `json:"configs,omitempty"`
}

// loadTopics reads the metadata file (creating it on the first start of an
// empty data directory), removes the logs of deleted topics, and opens every
// partition log the file names.
func (b *Broker) loadTopics() error {
	path := filepath.Join(b.store.Dir(), metaFileName)
	logs := slices.DeleteFunc(b.store.Logs(), func(l *storage.Log) bool {
		return strings.HasPrefix(l.TopicPartition().Topic, "__")
	})
	mf, have, err := b.readMeta(path)
	if err != nil {
		return err
	}
	switch {
	case b.cfg.RecoverMetadata:
		if mf, err = b.recoverMeta(mf, have, logs); err != nil {
			return err
		}
	case !have && len(logs) > 0:
		return b.errNoMetadata(path, logs)
	case !have:
		id := uuid.New()
		mf = metaFile{Version: 1, ClusterID: base64.RawURLEncoding.EncodeToString(id[:])}
	}
	b.clusterID = mf.ClusterID
	b.tombstones = mf.Deleted
	// The dynamic broker configs first: the topics' configs default to them.
	dyn := &dynamicConfigs{node: mf.BrokerConfigs, cluster: mf.ClusterConfigs}
	empty := newTopicSet(nil)
	empty.dyn = dyn
	b.topicSet.Store(empty)
	if err := b.removeDeleted(mf, logs); err != nil {
		return err
	}

	var ts []*topic
	for _, mt := range mf.Topics {
		t, err := b.openTopic(mt)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	set := newTopicSet(ts)
	set.dyn = dyn
	for _, l := range b.store.Logs() {
		tp := l.TopicPartition()
		if strings.HasPrefix(tp.Topic, "__") || set.byName[tp.Topic].partition(tp.Partition) != nil {
			continue
		}
		if l.LogEndOffset() > 0 {
			return fmt.Errorf("broker: partition log %s holds offsets up to %d but %s does not name topic %q (nor a deletion of it); nothing was changed. "+
				"To keep it, start once with --recover-metadata (adds the topic back); to drop it, delete the directory",
				l.Dir(), l.LogEndOffset(), path, tp.Topic)
		}
		// Never written: the leftover of a create or partition add that a
		// crash interrupted before the metadata named it.
		b.cfg.Logger.Info("broker: removing the empty log of a never-completed topic create", "topic", tp.Topic, "partition", tp.Partition)
		if err := b.store.DeleteLog(tp); err != nil {
			return fmt.Errorf("broker: remove leftover log %s: %w", tp, err)
		}
	}
	b.tombstones = nil
	b.topicSet.Store(set)
	if !have || b.cfg.RecoverMetadata || len(mf.Deleted) > 0 {
		return b.writeMeta(b.clusterID, set)
	}
	return nil
}

// readMeta reads the metadata file; have is false when there is none (or,
// under RecoverMetadata, when it cannot be parsed).
func (b *Broker) readMeta(path string) (mf metaFile, have bool, err error) {
	data, err := storage.ReadFile(b.store.FS(), path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return metaFile{}, false, nil
	case err != nil:
		return metaFile{}, false, fmt.Errorf("broker: read metadata: %w", err)
	}
	if err = json.Unmarshal(data, &mf); err == nil && mf.Version != 1 {
		err = fmt.Errorf("unknown format version %d", mf.Version)
	}
	if err != nil {
		if b.cfg.RecoverMetadata {
			b.cfg.Logger.Warn("broker: ignoring the unreadable metadata file; rebuilding it from the partition directories", "path", path, "err", err)
			return metaFile{}, false, nil
		}
		return metaFile{}, false, fmt.Errorf("broker: metadata %s: %w; restore it from a backup, or start once with --recover-metadata to rebuild it from the partition directories", path, err)
	}
	return mf, true, nil
}

func (b *Broker) errNoMetadata(path string, logs []*storage.Log) error {
	var names []string
	for _, l := range logs {
		if n := l.TopicPartition().Topic; !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	shown := names
	if len(shown) > 5 {
		shown = append(slices.Clone(shown[:5]), "...")
	}
	return fmt.Errorf("broker: %s is missing, but the data directory %s holds %d partition logs of %d topics (%s); nothing was changed. "+
		"If the metadata was lost, start once with --recover-metadata to rebuild it from the partition directories; "+
		"if --data points at the wrong directory, point it at the right one",
		path, b.store.Dir(), len(logs), len(names), strings.Join(shown, ", "))
}

// removeDeleted removes the logs of the topics mf's tombstones name: a
// delete that a crash interrupted after its metadata was written.
func (b *Broker) removeDeleted(mf metaFile, logs []*storage.Log) error {
	if len(mf.Deleted) == 0 {
		return nil
	}
	live := map[string]bool{}
	for _, mt := range mf.Topics {
		live[mt.Name] = true
	}
	for _, l := range logs {
		tp := l.TopicPartition()
		for _, tomb := range mf.Deleted {
			if tomb.Name != tp.Topic {
				continue
			}
			pm, ok, err := b.readPartMeta(l)
			if err != nil {
				return err
			}
			// A log of a topic created again under the same name has its own
			// ID; a log without one (written before IDs were kept in the
			// partition directory) is the deleted topic's unless the name
			// is live again.
			if ok && pm.ID != tomb.ID || !ok && live[tp.Topic] {
				continue
			}
			b.cfg.Logger.Info("broker: removing the log of a deleted topic", "topic", tp.Topic, "partition", tp.Partition)
			if err := b.store.DeleteLog(tp); err != nil {
				return fmt.Errorf("broker: remove log of deleted topic %s: %w", tp, err)
			}
			break
		}
	}
	return nil
}

// openTopic opens the logs of one topic the metadata names.
func (b *Broker) openTopic(mt metaTopic) (*topic, error) {
	id, err := uuid.Parse(mt.ID)
	if err != nil {
		return nil, fmt.Errorf("broker: metadata: topic %s: bad id: %w", mt.Name, err)
	}
	cfg, err := b.buildTopicConfig(mt.Configs)
	if err != nil {
		return nil, fmt.Errorf("broker: metadata: topic %s: %w", mt.Name, err)
	}
	t := &topic{name: mt.Name, id: id, cfg: cfg}
	for p := range mt.Partitions {
		tp := storage.TopicPartition{Topic: mt.Name, Partition: p}
		l, ok := b.store.Log(tp)
		if !ok {
			dir := filepath.Join(b.store.Dir(), tp.String())
			if !b.cfg.RecoverMetadata {
				return nil, fmt.Errorf("broker: partition directory %s is missing (%s names topic %q with %d partitions); nothing was changed. "+
					"Restore the directory from a backup, or start once with --recover-metadata to accept the loss and recreate the partition empty",
					dir, metaFileName, mt.Name, mt.Partitions)
			}
			b.cfg.Logger.Warn("broker: recover metadata: partition directory missing, creating it empty", "dir", dir)
			if l, err = b.store.CreateLog(tp, cfg.log); err != nil {
				return nil, fmt.Errorf("broker: recreate %s: %w", tp, err)
			}
		}
		pm, ok, err := b.readPartMeta(l)
		if err != nil {
			return nil, err
		}
		if ok && pm.ID != mt.ID {
			return nil, fmt.Errorf("broker: partition directory %s belongs to topic ID %s, but %s names topic %q with ID %s; nothing was changed. "+
				"Move the directory away if it is not this topic's, or start once with --recover-metadata",
				l.Dir(), pm.ID, metaFileName, mt.Name, mt.ID)
		}
		l.SetConfig(cfg.log)
		t.parts = append(t.parts, l)
		if !ok || !maps.Equal(pm.Configs, mt.Configs) || pm.ClusterID != b.clusterID {
			// Written before partition directories kept their topic, or a
			// config change interrupted before it reached this one.
			if err := b.writePartMeta(t, l); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// recoverMeta rebuilds the metadata from old (if have) and the partition
// directories: every topic either names, with the larger partition count,
// its ID and configs from old where it has them, else from the partition
// directories' topic-meta.json. Logs that a tombstone claims stay out.
func (b *Broker) recoverMeta(old metaFile, have bool, logs []*storage.Log) (metaFile, error) {
	mf := metaFile{Version: 1, ClusterID: old.ClusterID, Deleted: old.Deleted, BrokerConfigs: old.BrokerConfigs, ClusterConfigs: old.ClusterConfigs}
	byName := map[string]*metaTopic{}
	for _, mt := range old.Topics {
		byName[mt.Name] = &mt
	}
	tombstoned := func(name string, pm partMeta, ok bool) bool {
		for _, tomb := range old.Deleted {
			if tomb.Name == name && (ok && pm.ID == tomb.ID || !ok && byName[name] == nil) {
				return true
			}
		}
		return false
	}
	found := map[string]*metaTopic{}
	var order []string
	for _, l := range logs {
		tp := l.TopicPartition()
		pm, ok, err := b.readPartMeta(l)
		if err != nil {
			return metaFile{}, err
		}
		if tombstoned(tp.Topic, pm, ok) {
			continue
		}
		if ok && pm.Topic != tp.Topic {
			return metaFile{}, fmt.Errorf("broker: recover metadata: %s names topic %q, not %q", filepath.Join(l.Dir(), partMetaFileName), pm.Topic, tp.Topic)
		}
		ft := found[tp.Topic]
		if ft == nil {
			ft = &metaTopic{Name: tp.Topic}
			found[tp.Topic] = ft
			order = append(order, tp.Topic)
		}
		ft.Partitions = max(ft.Partitions, tp.Partition+1)
		if !ok {
			continue
		}
		if ft.ID != "" && ft.ID != pm.ID {
			return metaFile{}, fmt.Errorf("broker: recover metadata: the partition directories of topic %q carry two topic IDs (%s and %s, the second in %s); move the ones that do not belong away",
				tp.Topic, ft.ID, pm.ID, l.Dir())
		}
		if ft.ID == "" || tp.Partition == 0 {
			ft.ID, ft.Configs = pm.ID, pm.Configs
		}
		if mf.ClusterID == "" {
			mf.ClusterID = pm.ClusterID
		}
	}
	if mf.ClusterID == "" {
		id := uuid.New()
		mf.ClusterID = base64.RawURLEncoding.EncodeToString(id[:])
		b.cfg.Logger.Warn("broker: recover metadata: no cluster ID found, generated a new one", "cluster_id", mf.ClusterID)
	}
	for _, mt := range old.Topics {
		if ft := found[mt.Name]; ft != nil {
			mt.Partitions = max(mt.Partitions, ft.Partitions)
		}
		mf.Topics = append(mf.Topics, mt)
	}
	for _, name := range order {
		if byName[name] != nil {
			continue
		}
		ft := found[name]
		if ft.ID == "" {
			ft.ID = uuid.NewString()
			b.cfg.Logger.Warn("broker: recover metadata: topic has no topic-meta.json; new topic ID, default configs", "topic", name, "id", ft.ID)
		}
		mf.Topics = append(mf.Topics, *ft)
	}
	for _, mt := range mf.Topics {
		b.cfg.Logger.Info("broker: recover metadata: topic", "topic", mt.Name, "partitions", mt.Partitions, "id", mt.ID, "configs", mt.Configs)
	}
	return mf, nil
}

// readPartMeta reads a partition directory's topic-meta.json; ok is false
// when it has none.
func (b *Broker) readPartMeta(l *storage.Log) (pm partMeta, ok bool, err error) {
	path := filepath.Join(l.Dir(), partMetaFileName)
	data, err := storage.ReadFile(b.store.FS(), path)
	if errors.Is(err, fs.ErrNotExist) {
		return partMeta{}, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &pm)
	}
	if err != nil {
		return partMeta{}, false, fmt.Errorf("broker: %s: %w", path, err)
	}
	return pm, true, nil
}

// writePartMeta durably writes t's topic-meta.json into l's directory.
func (b *Broker) writePartMeta(t *topic, l *storage.Log) error {
	pm := partMeta{Version: 1, ClusterID: b.clusterID, Topic: t.name, ID: uuid.UUID(t.id).String()}
	if len(t.cfg.overrides) > 0 {
		pm.Configs = t.cfg.overrides
	}
	data, err := json.MarshalIndent(pm, "", "  ")
	if err != nil {
		return fmt.Errorf("broker: encode %s: %w", partMetaFileName, err)
	}
	if err := storage.WriteFileAtomic(b.store.FS(), filepath.Join(l.Dir(), partMetaFileName), data); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

// writeMeta durably writes the metadata file for set and b.tombstones.
// Callers hold b.metaMu (or are loadTopics, before the listener exists).
func (b *Broker) writeMeta(clusterID string, set *topicSet) error {
	mf := metaFile{Version: 1, ClusterID: clusterID, Topics: []metaTopic{}, Deleted: b.tombstones}
	if set.dyn != nil {
		mf.BrokerConfigs, mf.ClusterConfigs = set.dyn.node, set.dyn.cluster
	}
	for _, t := range set.sorted() {
		mt := metaTopic{Name: t.name, ID: uuid.UUID(t.id).String(), Partitions: int32(len(t.parts))}
		if len(t.cfg.overrides) > 0 {
			mt.Configs = t.cfg.overrides
		}
		mf.Topics = append(mf.Topics, mt)
	}
	data, err := json.MarshalIndent(mf, "", "  ")
	if err != nil {
		return fmt.Errorf("broker: encode metadata: %w", err)
	}
	if err := storage.WriteFileAtomic(b.store.FS(), filepath.Join(b.store.Dir(), metaFileName), data); err != nil {
		return fmt.Errorf("broker: write metadata: %w", err)
	}
	return nil
}
