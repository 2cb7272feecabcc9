package broker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/spoolmq/spool/storage"
)

// topic is one topic's state. It is immutable: a change builds a new topic
// and publishes a new topicSet, so the produce and fetch paths read topics
// without locks.
type topic struct {
	name  string
	id    [16]byte
	cfg   *topicConfig
	parts []*storage.Log
}

// topicSet is an immutable snapshot of every topic, and of the dynamic
// broker configs their defaults come from (nil: none).
type topicSet struct {
	byName map[string]*topic
	byID   map[[16]byte]*topic
	dyn    *dynamicConfigs
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
	next := newTopicSet(append(ts, t))
	next.dyn = s.dyn
	return next
}

// without returns a copy of s without the named topic.
func (s *topicSet) without(name string) *topicSet {
	ts := slices.Collect(maps.Values(s.byName))
	next := newTopicSet(slices.DeleteFunc(ts, func(o *topic) bool { return o.name == name }))
	next.dyn = s.dyn
	return next
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
		if err == nil {
			parts = append(parts, l)
			err = b.writePartMeta(t, l)
		}
		if err != nil {
			b.dropLogs(t.name, start, len(parts))
			return fmt.Errorf("broker: create %s-%d: %w", t.name, p, err)
		}
	}
	t.parts = parts
	return nil
}

// dropLogs removes partitions [from, to) of a topic and reports whether
// all of them are gone.
func (b *Broker) dropLogs(name string, from, to int) bool {
	ok := true
	for p := from; p < to; p++ {
		if err := b.store.DeleteLog(storage.TopicPartition{Topic: name, Partition: int32(p)}); err != nil {
			b.cfg.Logger.Warn("broker: remove partition log", "topic", name, "partition", p, "err", err)
			ok = false
		}
	}
	return ok
}

// deleteTopic removes a topic: first the metadata, without the topic and
// with its tombstone, then the logs, then the tombstone. A crash in between
// leaves logs that the tombstone names, which the next start removes.
func (b *Broker) deleteTopic(name string) error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	set := b.topics()
	t, ok := set.byName[name]
	if !ok {
		return errUnknownTopic
	}
	next := set.without(name)
	tomb := metaTombstone{Name: t.name, ID: uuid.UUID(t.id).String(), Partitions: int32(len(t.parts))}
	b.tombstones = append(slices.Clone(b.tombstones), tomb)
	if err := b.writeMeta(b.clusterID, next); err != nil {
		b.tombstones = b.tombstones[:len(b.tombstones)-1]
		return err
	}
	b.topicSet.Store(next)
	if b.dropLogs(name, 0, len(t.parts)) {
		b.tombstones = slices.DeleteFunc(slices.Clone(b.tombstones), func(o metaTombstone) bool { return o == tomb })
		if err := b.writeMeta(b.clusterID, next); err != nil {
			// The topic is deleted; the tombstone stays until the next
			// metadata write or start.
			b.cfg.Logger.Warn("broker: clear the tombstone of a deleted topic", "topic", name, "err", err)
		}
	}
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
func (b *Broker) setTopicConfig(name string, update func(old map[string]string, lookup configLookup) (map[string]string, error), validateOnly bool) error {
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	set := b.topics()
	old, ok := set.byName[name]
	if !ok {
		return errUnknownTopic
	}
	lookup := func(name string) (configDef, string, error) {
		d, ok := findConfigDef(name)
		if !ok {
			return d, "", unknownConfig(name)
		}
		return d, b.topicChain(old.cfg, d)[0].value, nil
	}
	overrides, err := update(maps.Clone(old.cfg.overrides), lookup)
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
		if err := b.writePartMeta(&t, l); err != nil {
			// The metadata file has the change; the next start rewrites
			// the partition's copy.
			b.cfg.Logger.Warn("broker: write topic config into the partition directory", "dir", l.Dir(), "err", err)
		}
	}
	return nil
}
