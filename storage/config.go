package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"
)

// FsyncMode says when appended bytes are forced to disk.
type FsyncMode int

// Fsync modes; see docs/storage.md for exactly what each guarantees.
const (
	// FsyncAlways: Append returns after its bytes are fsynced (group commit),
	// and readers see only fsynced batches.
	FsyncAlways FsyncMode = iota
	// FsyncInterval: fsync dirty logs every Options.FsyncInterval.
	FsyncInterval
	// FsyncNever: leave writeback to the OS (segments are still synced when they roll).
	FsyncNever
)

// ParseFsyncMode parses "always", "interval" or "never".
func ParseFsyncMode(s string) (FsyncMode, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "interval":
		return FsyncInterval, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("storage: unknown fsync mode %q (want always, interval or never)", s)
}

// String returns the mode's name as ParseFsyncMode accepts it.
func (m FsyncMode) String() string {
	switch m {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("FsyncMode(%d)", int(m))
}

// Options configure a Store.
type Options struct {
	Dir                    string           // required: the data directory
	FS                     FS               // default: OSFS
	Fsync                  FsyncMode        // default FsyncAlways
	FsyncInterval          time.Duration    // FsyncInterval mode period; default 50ms
	RetentionCheckInterval time.Duration    // default 1 minute; <0 disables the background loop
	Logger                 *slog.Logger     // default: discard
	Now                    func() time.Time // default time.Now

	// OnFsync, if set, is called after each fsync the syncer makes of a
	// log's active segment (a group-commit round in FsyncAlways, a sync in
	// FsyncInterval) with its duration and error. It is called from many
	// goroutines at once and must be fast; the default is none.
	OnFsync func(d time.Duration, err error)

	// CommitLogMaxBatch: in FsyncAlways mode, batches of at most this many
	// bytes are acknowledged through the shared commit log (one fsync for
	// every partition's small appends); larger ones by an fsync of their
	// partition's segment. Default 32 KiB; a negative value turns the commit
	// log off (every batch takes the per-partition path).
	CommitLogMaxBatch int
	// CommitLogFileBytes is the size of each commit log file, written full
	// of zeros before use; a full file is checkpointed and deleted. Default
	// 16 MiB, at least 64 KiB.
	CommitLogFileBytes int64
	// CommitLogRoundsInFlight is how many commit log rounds may be written
	// and waiting for their fsyncs at once (acknowledged in order): with 2,
	// a round's fsync starts while the one before is still in flight, so an
	// append that just missed a round waits for about one fsync, not two.
	// Default 2; 1 makes the rounds one at a time.
	CommitLogRoundsInFlight int
	// CommitLogShareWindow: the commit log takes a small batch only while
	// it can share a round with another partition's, that is while appends
	// of more than one log arrive: for this long after an append came from
	// a different log than the one before it. A single busy partition
	// fsyncs its own segment, which costs one write and one fsync per round
	// where the commit log costs two writes and, every CommitLogFileBytes,
	// a checkpoint and a new prewritten file. Default 50 ms; a negative
	// value sends every small batch to the commit log.
	CommitLogShareWindow time.Duration
}

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.FsyncInterval == 0 {
		o.FsyncInterval = 50 * time.Millisecond
	}
	if o.RetentionCheckInterval == 0 {
		o.RetentionCheckInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CommitLogMaxBatch == 0 {
		o.CommitLogMaxBatch = 32 << 10
	}
	if o.CommitLogFileBytes == 0 {
		o.CommitLogFileBytes = 16 << 20
	}
	o.CommitLogFileBytes = max(o.CommitLogFileBytes, 64<<10)
	if o.CommitLogRoundsInFlight <= 0 {
		o.CommitLogRoundsInFlight = 2
	}
	if o.CommitLogShareWindow == 0 {
		o.CommitLogShareWindow = 50 * time.Millisecond
	}
	return o
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	if o.Dir == "" {
		return errors.New("storage: Options.Dir is required")
	}
	if o.Fsync < FsyncAlways || o.Fsync > FsyncNever {
		return fmt.Errorf("storage: invalid fsync mode %d", int(o.Fsync))
	}
	if o.Fsync == FsyncInterval && o.FsyncInterval < 0 {
		return fmt.Errorf("storage: negative fsync interval %v", o.FsyncInterval)
	}
	return nil
}

// LogConfig is the per-partition configuration (Kafka topic configs).
type LogConfig struct {
	SegmentBytes       int64         // segment.bytes: roll the active segment at this size; default 1 GiB
	SegmentMs          time.Duration // segment.ms: roll when the active segment's first batch is older; default 7 days
	RetentionMs        time.Duration // retention.ms: delete closed segments whose newest timestamp is older; <0 = forever; RetentionZero = 0 ms; default 7 days
	RetentionBytes     int64         // retention.bytes: delete oldest closed segments while the log is bigger; <0 = no limit (default); RetentionZero = 0 bytes
	IndexIntervalBytes int           // index.interval.bytes: bytes between sparse index entries; default 4096

	// FlushMessages (flush.messages) and FlushAfter (flush.ms) make the
	// FsyncInterval and FsyncNever modes fsync this log more often: the
	// append that brings the unsynced records to FlushMessages waits for an
	// fsync (as in FsyncAlways), and a write is fsynced at most FlushAfter
	// after it was made. Zero (the default) adds no fsync. FsyncAlways
	// already fsyncs every append before it returns and ignores both.
	FlushMessages int64
	FlushAfter    time.Duration
}

// RetentionZero, as LogConfig.RetentionMs or LogConfig.RetentionBytes, is
// Kafka's retention.ms=0 or retention.bytes=0: every closed segment may be
// deleted. (The fields' zero value means the default.)
const RetentionZero = math.MinInt64

// Limits that keep positions within the uint32 fields of the index format.
const (
	maxSegmentBytes = math.MaxInt32
	minSegmentBytes = 1024
)

// DefaultLogConfig returns Kafka's defaults.
func DefaultLogConfig() LogConfig {
	return LogConfig{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * 24 * time.Hour,
		RetentionMs:        7 * 24 * time.Hour,
		RetentionBytes:     -1,
		IndexIntervalBytes: 4096,
	}
}

// retention returns the retention limits to enforce (RetentionZero as 0):
// a negative value is no limit.
func (c LogConfig) retention() (ms, bytes int64) {
	ms, bytes = c.RetentionMs.Milliseconds(), c.RetentionBytes
	switch {
	case c.RetentionMs == RetentionZero:
		ms = 0
	case c.RetentionMs < 0:
		ms = -1 // (-1ns).Milliseconds() would be 0
	}
	if c.RetentionBytes == RetentionZero {
		bytes = 0
	}
	return ms, bytes
}

// normalized fills zero fields with defaults and clamps to what the format allows.
func (c LogConfig) normalized() LogConfig {
	d := DefaultLogConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	c.SegmentBytes = min(max(c.SegmentBytes, minSegmentBytes), maxSegmentBytes)
	if c.SegmentMs <= 0 {
		c.SegmentMs = d.SegmentMs
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = d.RetentionMs
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = d.RetentionBytes
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	c.FlushMessages = max(c.FlushMessages, 0)
	c.FlushAfter = max(c.FlushAfter, 0)
	return c
}
