// Package group is Spool's classic-protocol group coordinator: JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, committed offsets (OffsetCommit,
// OffsetFetch, OffsetDelete) and group administration (ListGroups,
// DescribeGroups, DeleteGroups).
//
// One goroutine (the coordinator loop) owns every group's state; handlers,
// timers and journal completions send it closures over a channel, so no
// group state is ever shared between connections. Requests that wait
// (JoinGroup until the rebalance completes, SyncGroup until the leader's
// assignment) get their answer on a buffered channel and give up when their
// context (the client connection) ends.
//
// Committed offsets and group metadata are made durable in a journal with a
// snapshot (see journal.go for the format) before a commit is acknowledged.
// Members are not persisted: after a restart every member rejoins.
package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/spoolmq/spool/storage"
)

// Config configures a Coordinator. Zero fields take the default in their
// comment (WithDefaults).
type Config struct {
	// Dir holds the journal and snapshot. Required.
	Dir string

	// FS is the file system of Dir. Default storage.OSFS.
	FS storage.FS

	// NoSync skips fsync of journal writes (for fsync=never brokers).
	// Default false: a commit is acknowledged after it is fsynced.
	NoSync bool

	// MinSessionTimeout and MaxSessionTimeout bound a member's session
	// timeout (group.min/max.session.timeout.ms). Defaults 6s and 30m.
	MinSessionTimeout, MaxSessionTimeout time.Duration

	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: the first
	// rebalance of an empty group waits this long for more members, and
	// each member that joins meanwhile extends the wait by as much again,
	// up to the group's rebalance timeout, so that members starting
	// together share the first generation instead of the first one taking
	// every partition and a second rebalance following. Default 0: none
	// (the broker passes Kafka's 3s unless configured otherwise).
	InitialRebalanceDelay time.Duration

	// OffsetsRetention is offsets.retention.minutes: the offsets of a group
	// expire this long after the group became empty (a group that never used
	// group management: this long after each commit). Default 7 days.
	OffsetsRetention time.Duration

	// RetentionCheckInterval is offsets.retention.check.interval.ms.
	// Default 10 minutes.
	RetentionCheckInterval time.Duration

	// MaxGroupSize is group.max.size: the most members (joined or
	// waiting to come back with the member ID handed out, KIP-394) a group
	// may have; a new member beyond gets GROUP_MAX_SIZE_REACHED. Default
	// 1000 (Kafka's default is unlimited; this bounds what a JoinGroup flood
	// with new member IDs can make the coordinator hold).
	MaxGroupSize int

	// MaxMetadataBytes is offset.metadata.max.bytes. Default 4096.
	MaxMetadataBytes int

	// CompactBytes is the journal size beyond which it is folded into the
	// snapshot. Default 8 MiB.
	CompactBytes int64

	// PartitionExists, if set, reports whether a topic partition exists;
	// commits to others get UNKNOWN_TOPIC_OR_PARTITION. Default: all exist.
	PartitionExists func(topic string, partition int32) bool

	// Logger gets journal failures. Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field defaulted.
func (c Config) WithDefaults() Config {
	if c.MaxGroupSize == 0 {
		c.MaxGroupSize = 1000
	}
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.OffsetsRetention == 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.RetentionCheckInterval == 0 {
		c.RetentionCheckInterval = 10 * time.Minute
	}
	if c.MaxMetadataBytes == 0 {
		c.MaxMetadataBytes = 4096
	}
	if c.CompactBytes == 0 {
		c.CompactBytes = 8 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FS == nil {
		c.FS = storage.OSFS{}
	}
	return c
}

// Validate reports the first invalid field (after WithDefaults).
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("group: config: Dir is required")
	case c.MinSessionTimeout < 0 || c.MaxSessionTimeout < c.MinSessionTimeout:
		return fmt.Errorf("group: config: session timeouts [%v, %v] are not a valid range", c.MinSessionTimeout, c.MaxSessionTimeout)
	case c.OffsetsRetention < 0 || c.RetentionCheckInterval < 0:
		return errors.New("group: config: OffsetsRetention and RetentionCheckInterval must not be negative")
	case c.InitialRebalanceDelay < 0:
		return errors.New("group: config: InitialRebalanceDelay must not be negative")
	case c.MaxMetadataBytes < 0:
		return errors.New("group: config: MaxMetadataBytes must not be negative")
	}
	return nil
}

// Client identifies the connection a request came on, for DescribeGroups.
type Client struct {
	ID   string // the request header's client ID
	Host string // the remote address
}

var errClosed = errors.New("group: coordinator closed")

// Coordinator is the group coordinator. New, then Start; Close stops it.
type Coordinator struct {
	cfg    Config
	ops    chan func()
	quit   chan struct{}
	done   chan struct{}
	loaded atomic.Bool

	startOnce, closeOnce sync.Once
	closeErr             error

	// Owned by the loop goroutine.
	j      *journal
	groups map[string]*group
}

// New returns a coordinator for cfg; it does no I/O.
func New(cfg Config) (*Coordinator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Coordinator{
		cfg:    cfg,
		ops:    make(chan func(), 64),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		groups: make(map[string]*group),
	}, nil
}

// Start loads the durable state in the background and serves requests;
// until the load is done, requests get COORDINATOR_LOAD_IN_PROGRESS. The
// returned channel yields the load's result (nil on success) and closes.
func (c *Coordinator) Start() <-chan error {
	res := make(chan error, 1)
	c.startOnce.Do(func() { go c.run(res) })
	return res
}

// Loaded reports whether the durable state is loaded.
func (c *Coordinator) Loaded() bool { return c.loaded.Load() }

// Close stops the loop, writes what the journal holds, snapshots it and
// waits. Waiting requests get COORDINATOR_NOT_AVAILABLE. Idempotent.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		c.startOnce.Do(func() { close(c.done) }) // never started
		close(c.quit)
		<-c.done
		if c.j != nil {
			c.closeErr = c.j.close()
		}
	})
	return c.closeErr
}

func (c *Coordinator) run(res chan<- error) {
	defer close(c.done)
	j, entries, err := openJournal(c.cfg.FS, c.cfg.Dir, c.cfg.NoSync, c.cfg.CompactBytes)
	if err != nil {
		c.cfg.Logger.Error("group: load", "err", err)
		res <- err
		close(res)
		<-c.quit
		return
	}
	c.j = j
	c.load(entries)
	c.loaded.Store(true)
	res <- nil
	close(res)
	sweep := time.NewTicker(c.cfg.RetentionCheckInterval)
	defer sweep.Stop()
	c.expire()
	for {
		select {
		case fn := <-c.ops:
			fn()
		case <-sweep.C:
			c.expire()
		case <-c.quit:
			c.shutdown()
			return
		}
	}
}

// post hands fn to the loop; it is dropped once the coordinator is closed.
func (c *Coordinator) post(fn func()) {
	select {
	case c.ops <- fn:
	case <-c.quit:
	}
}

// call runs fn on the loop and waits for the answer it sends on a buffered
// channel. It returns (zero, code) when the coordinator is loading or closed
// or ctx ends first.
func call[T any](ctx context.Context, c *Coordinator, fn func(reply func(T))) (T, int16) {
	var zero T
	if !c.loaded.Load() {
		select {
		case <-c.quit:
			return zero, kerr.CoordinatorNotAvailable.Code
		default:
			return zero, kerr.CoordinatorLoadInProgress.Code
		}
	}
	ch := make(chan T, 1)
	reply := func(v T) {
		select {
		case ch <- v:
		default: // answered twice: a bug, but never block the loop
		}
	}
	select {
	case c.ops <- func() { fn(reply) }:
	case <-c.quit:
		return zero, kerr.CoordinatorNotAvailable.Code
	case <-ctx.Done():
		return zero, kerr.CoordinatorNotAvailable.Code
	}
	select {
	case v := <-ch:
		return v, 0
	case <-c.quit:
		return zero, kerr.CoordinatorNotAvailable.Code
	case <-ctx.Done():
		return zero, kerr.CoordinatorNotAvailable.Code
	}
}

// persist writes entries and runs then on the loop once they are durable.
func (c *Coordinator) persist(entries []*entry, then func(error)) {
	c.j.write(entries, func(err error) {
		if err != nil {
			c.cfg.Logger.Error("group: persist", "err", err)
		}
		c.post(func() { then(err) })
	})
}

// load rebuilds the groups from the durable image.
func (c *Coordinator) load(entries []*entry) {
	now := time.Now()
	for _, e := range entries {
		g := c.groups[e.Group]
		if g == nil {
			g = newGroup(e.Group)
			g.emptySince = now
			c.groups[e.Group] = g
		}
		switch {
		case e.Meta != nil:
			g.protocolType, g.protocol, g.generation = e.Meta.ProtocolType, e.Meta.Protocol, e.Meta.Generation
			if e.Meta.EmptySinceMs > 0 {
				g.emptySince = time.UnixMilli(e.Meta.EmptySinceMs)
			}
		case e.Offset != nil:
			g.offsets[topicPartition{e.Topic, e.Partition}] = *e.Offset
		}
	}
}

// shutdown answers every waiting request: the client retries elsewhere (on
// the restarted broker).
func (c *Coordinator) shutdown() {
	for _, g := range c.groups {
		for _, m := range g.members {
			m.stopTimer()
		}
		g.stopRebalanceTimer()
		for _, t := range g.pending {
			t.Stop()
		}
	}
}

// expire applies offsets.retention: an empty group's offsets expire
// OffsetsRetention after it became empty, and the group with them; a group
// that never used group management (no protocol type: offsets committed by
// an admin or a standalone consumer) loses each offset OffsetsRetention
// after its commit.
func (c *Coordinator) expire() {
	now := time.Now()
	cutoff := now.Add(-c.cfg.OffsetsRetention)
	for name, g := range c.groups {
		if g.state != stateEmpty || len(g.pending) > 0 || g.deleting {
			continue
		}
		var entries []*entry
		if g.protocolType != "" {
			if g.emptySince.After(cutoff) {
				continue
			}
			entries = append(entries, &entry{Group: name, Delete: true})
		} else {
			for tp, o := range g.offsets {
				if time.UnixMilli(o.CommitMs).After(cutoff) {
					continue
				}
				entries = append(entries, &entry{Group: name, Topic: tp.topic, Partition: tp.partition, Delete: true})
			}
			if len(entries) == len(g.offsets) {
				entries = []*entry{{Group: name, Delete: true}}
			}
		}
		if len(entries) == 0 {
			continue
		}
		g.deleting = true
		version := g.version
		c.persist(entries, func(err error) {
			g.deleting = false
			if err != nil || c.groups[name] != g {
				return
			}
			if g.version != version {
				// A member joined or an offset was committed while the
				// tombstones were written: write the group back as it is.
				c.persist(g.fullEntries(), func(error) {})
				return
			}
			for _, e := range entries {
				if e.Topic == "" {
					if g.state == stateEmpty && len(g.members) == 0 {
						g.state = stateDead
						delete(c.groups, name)
					}
					return
				}
				delete(g.offsets, topicPartition{e.Topic, e.Partition})
			}
		})
	}
}
