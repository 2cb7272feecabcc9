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

// metaFileName is the broker's metadata file in the data directory: the
// cluster ID and every topic's name, ID, partition count and config
// overrides, as JSON. It is the source of truth for which topics exist:
// partition logs on disk that it does not name are leftovers of an
// interrupted create or delete and are removed at start (except "__"
// internal topics, which belong to other components).
const metaFileName = "broker-meta.json"

// metaFile is the on-disk form of the metadata file.
type metaFile struct {
	Version   int         `json:"version"` // format version, 1
	ClusterID string      `json:"cluster_id"`
	Topics    []metaTopic `json:"topics"`
}

type metaTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"` // UUID
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// topic is one topic's state. It is immutable: a change builds a new topic
// and publishes a new topicSet, so the produce and fetch paths read topics
// without locks.
type topic struct {
	name  string
	id    [16]byte
	cfg   *topicConfig
	parts []*storage.Log
}

// topicSet is an immutable snapshot of every topic.
type topicSet struct {
	byName map[string]*topic
	byID   map[[16]byte]*topic
}

func newTopicSet(ts []*topic) *topicSet {
	s := &topicSet{byName: make(map[string]*topic, len(ts)), byID: make(map[[16]byte]*topic, len(ts))}
	for _, t := range ts {
		s.byName[t.name] = t
		s.byID[t.id] = t
	}
	return s
}

// with returns a copy of s with t added or replaced.
func (s *topicSet) with(t *topic) *topicSet {
	ts := slices.Collect(maps.Values(s.byName))
	ts = slices.DeleteFunc(ts, func(o *topic) bool { return o.name == t.name })
	return newTopicSet(append(ts, t))
}

// without returns a copy of s without the named topic.
func (s *topicSet) without(name string) *topicSet {
	ts := slices.Collect(maps.Values(s.byName))
	return newTopicSet(slices.DeleteFunc(ts, func(o *topic) bool { return o.name == name }))
}

// sorted returns the topics sorted by name.
func (s *topicSet) sorted() []*topic {
	ts := slices.Collect(maps.Values(s.byName))
	slices.SortFunc(ts, func(a, b *topic) int { return strings.Compare(a.name, b.name) })
	return ts
}

// topics returns the current topic snapshot.
func (b *Broker) topics() *topicSet { return b.topicSet.Load() }

// partition returns the log of topic/partition, or nil.
func (t *topic) partition(p int32) *storage.Log {
	if t == nil || p < 0 || int(p) >= len(t.parts) {
		return nil
	}
	return t.parts[p]
}

// validTopicName reports why name is not a valid Kafka topic name, or "".
func validTopicName(name string) string {
	switch {
	case name == "":
		return "topic name is empty"
	case name == "." || name == "..":
		return fmt.Sprintf("topic name %q is not allowed", name)
	case len(name) > 249:
		return fmt.Sprintf("topic name is %d characters long, the maximum is 249", len(name))
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("topic name %q contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return ""
}

// collides reports an existing topic whose name differs from name only by
// '.' versus '_' (Kafka refuses those: their metric names would collide).
func (s *topicSet) collides(name string) string {
	norm := strings.ReplaceAll(name, ".", "_")
	for n := range s.byName {
		if n != name && strings.ReplaceAll(n, ".", "_") == norm {
			return n
		}
	}
	return ""
}

// loadTopics reads the metadata file (creating it on first start), opens or
// creates every partition log it names and removes leftover logs.
func (b *Broker) loadTopics() error {
	path := filepath.Join(b.store.Dir(), metaFileName)
	data, err := storage.ReadFile(b.store.FS(), path)
	var mf metaFile
	switch {
	case errors.Is(err, fs.ErrNotExist):
		id := uuid.New()
		mf = metaFile{Version: 1, ClusterID: base64.RawURLEncoding.EncodeToString(id[:])}
		if err := b.writeMeta(mf.ClusterID, newTopicSet(nil)); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("broker: read metadata: %w", err)
	default:
		if err := json.Unmarshal(data, &mf); err != nil {
			return fmt.Errorf("broker: parse metadata %s: %w", path, err)
		}
		if mf.Version != 1 {
			return fmt.Errorf("broker: metadata %s: unknown format version %d", path, mf.Version)
		}
	}
	b.clusterID = mf.ClusterID

	var ts []*topic
	for _, mt := range mf.Topics {
		id, err := uuid.Parse(mt.ID)
		if err != nil {
			return fmt.Errorf("broker: metadata: topic %s: bad id: %w", mt.Name, err)
		}
		cfg, err := b.buildTopicConfig(mt.Configs)
		if err != nil {
			return fmt.Errorf("broker: metadata: topic %s: %w", mt.Name, err)
		}
		t := &topic{name: mt.Name, id: id, cfg: cfg}
		for p := range mt.Partitions {
			tp := storage.TopicPartition{Topic: mt.Name, Partition: p}
			l, ok := b.store.Log(tp)
			if !ok {
				b.cfg.Logger.Warn("broker: partition log missing at start, creating it empty", "topic", mt.Name, "partition", p)
				if l, err = b.store.CreateLog(tp, cfg.log); err != nil {
					return fmt.Errorf("broker: recreate %s-%d: %w", mt.Name, p, err)
				}
			}
			l.SetConfig(cfg.log)
			t.parts = append(t.parts, l)
		}
		ts = append(ts, t)
	}
	set := newTopicSet(ts)
	for _, l := range b.store.Logs() {
		tp := l.TopicPartition()
		if strings.HasPrefix(tp.Topic, "__") || set.byName[tp.Topic].partition(tp.Partition) != nil {
			continue
		}
		b.cfg.Logger.Info("broker: removing partition log of a deleted or never-completed topic", "topic", tp.Topic, "partition", tp.Partition)
		if err := b.store.DeleteLog(tp); err != nil {
			return fmt.Errorf("broker: remove leftover log %s-%d: %w", tp.Topic, tp.Partition, err)
		}
	}
	b.topicSet.Store(set)
	return nil
}

// writeMeta durably writes the metadata file for set. Callers hold b.metaMu.
func (b *Broker) writeMeta(clusterID string, set *topicSet) error {
	mf := metaFile{Version: 1, ClusterID: clusterID, Topics: []metaTopic{}}
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

// createTopic creates a topic with n partitions and the given (validated)
// config: logs first, then the metadata file, then the in-memory snapshot,
// so a crash in between leaves only leftover logs that the next start
// removes. It returns errTopicExists if the name is taken.
func (b *Broker) createTopic(name string, n int32, cfg *topicConfig) (*topic, error) {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	set := b.topics()
	if _, ok := set.byName[name]; ok {
		return nil, errTopicExists
	}
	t := &topic{name: strings.Clone(name), id: uuid.New(), cfg: cfg}
	if err := b.addLogsLocked(t, n); err != nil {
		return nil, err
	}
	next := set.with(t)
	if err := b.writeMeta(b.clusterID, next); err != nil {
		b.dropLogs(t.name, 0, len(t.parts))
		return nil, err
	}
	b.topicSet.Store(next)
	return t, nil
}

// addLogsLocked appends partition logs to t until it has n partitions. On
// error the logs it created are removed and t.parts is unchanged.
func (b *Broker) addLogsLocked(t *topic, n int32) error {
	start := len(t.parts)
	parts := slices.Clone(t.parts)
	for p := int32(start); p < n; p++ {
		tp := storage.TopicPartition{Topic: t.name, Partition: p}
		l, err := b.store.CreateLog(tp, t.cfg.log)
		if errors.Is(err, storage.ErrLogExists) {
			// A leftover of an interrupted delete: the topic is new, so
			// is its data.
			if err = b.store.DeleteLog(tp); err == nil {
				l, err = b.store.CreateLog(tp, t.cfg.log)
			}
		}
		if err != nil {
			b.dropLogs(t.name, start, len(parts))
			return fmt.Errorf("broker: create %s-%d: %w", t.name, p, err)
		}
		parts = append(parts, l)
	}
	t.parts = parts
	return nil
}

func (b *Broker) dropLogs(name string, from, to int) {
	for p := from; p < to; p++ {
		if err := b.store.DeleteLog(storage.TopicPartition{Topic: name, Partition: int32(p)}); err != nil {
			b.cfg.Logger.Warn("broker: remove partition log", "topic", name, "partition", p, "err", err)
		}
	}
}

// deleteTopic removes a topic: metadata first, then the logs (a crash in
// between leaves logs that the next start removes).
func (b *Broker) deleteTopic(name string) error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	set := b.topics()
	t, ok := set.byName[name]
	if !ok {
		return errUnknownTopic
	}
	next := set.without(name)
	if err := b.writeMeta(b.clusterID, next); err != nil {
		return err
	}
	b.topicSet.Store(next)
	b.dropLogs(name, 0, len(t.parts))
	return nil
}

// addPartitions grows a topic to n partitions.
func (b *Broker) addPartitions(name string, n int32, validateOnly bool) error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	set := b.topics()
	old, ok := set.byName[name]
	if !ok {
		return errUnknownTopic
	}
	if n <= int32(len(old.parts)) {
		return fmt.Errorf("%w: topic %s has %d partitions, cannot change to %d", errInvalidPartitions, name, len(old.parts), n)
	}
	if n > maxPartitions {
		return fmt.Errorf("%w: %d partitions is more than the maximum %d", errInvalidPartitions, n, maxPartitions)
	}
	if validateOnly {
		return nil
	}
	t := *old
	if err := b.addLogsLocked(&t, n); err != nil {
		return err
	}
	next := set.with(&t)
	if err := b.writeMeta(b.clusterID, next); err != nil {
		b.dropLogs(name, len(old.parts), len(t.parts))
		return err
	}
	b.topicSet.Store(next)
	return nil
}

// setTopicConfig replaces a topic's config overrides with overrides (already
// validated into cfg), persists them and applies them to every partition.
func (b *Broker) setTopicConfig(name string, update func(old map[string]string) (map[string]string, error), validateOnly bool) error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	set := b.topics()
	old, ok := set.byName[name]
	if !ok {
		return errUnknownTopic
	}
	overrides, err := update(maps.Clone(old.cfg.overrides))
	if err != nil {
		return err
	}
	cfg, err := b.buildTopicConfig(overrides)
	if err != nil {
		return fmt.Errorf("%w: %v", errInvalidConfig, err)
	}
	if validateOnly {
		return nil
	}
	t := *old
	t.cfg = cfg
	next := set.with(&t)
	if err := b.writeMeta(b.clusterID, next); err != nil {
		return err
	}
	b.topicSet.Store(next)
	for _, l := range t.parts {
		l.SetConfig(cfg.log)
	}
	return nil
}
