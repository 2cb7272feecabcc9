package broker

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/storage"
)

// Topic configs Spool understands. Every other name is refused with
// INVALID_CONFIG, as Kafka refuses unknown topic configs.
const (
	cfgRetentionMs          = "retention.ms"
	cfgRetentionBytes       = "retention.bytes"
	cfgSegmentBytes         = "segment.bytes"
	cfgSegmentMs            = "segment.ms"
	cfgMaxMessageBytes      = "max.message.bytes"
	cfgMessageTimestampType = "message.timestamp.type"
	cfgCleanupPolicy        = "cleanup.policy"
	cfgTimestampBeforeMax   = "message.timestamp.before.max.ms"
	cfgTimestampAfterMax    = "message.timestamp.after.max.ms"
)

// Defaults of the timestamp bounds, as Kafka 4.0 has them (KIP-1030): no
// bound into the past, one hour into the future.
const (
	defaultTimestampBeforeMaxMs = 1<<63 - 1
	defaultTimestampAfterMaxMs  = 3600000
)

// topicConfig is a topic's effective configuration: the explicitly set
// values (persisted in the metadata file) and what they mean for the log
// and the produce path. It is immutable once built; changes build a new one.
type topicConfig struct {
	overrides       map[string]string
	log             storage.LogConfig
	maxMessageBytes int32
	logAppendTime   bool
	// tsBefore and tsAfter bound CreateTime timestamps around the broker's
	// clock (message.timestamp.before/after.max.ms).
	tsBefore, tsAfter time.Duration
}

// configDef describes one topic config: its type, its broker-wide default
// and how a value is parsed into a topicConfig.
type configDef struct {
	name  string
	typ   kmsg.ConfigType
	def   func(b *Broker) string
	apply func(tc *topicConfig, v string) error
}

var topicConfigDefs = []configDef{
	{cfgCleanupPolicy, kmsg.ConfigTypeList, func(*Broker) string { return "delete" }, func(_ *topicConfig, v string) error {
		if v != "delete" {
			return fmt.Errorf("only cleanup.policy=delete is supported (got %q)", v)
		}
		return nil
	}},
	{cfgMaxMessageBytes, kmsg.ConfigTypeInt, func(b *Broker) string { return strconv.Itoa(int(b.cfg.MaxMessageBytes)) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 0, 1<<31-1)
		tc.maxMessageBytes = int32(n)
		return err
	}},
	{cfgTimestampAfterMax, kmsg.ConfigTypeLong, func(*Broker) string { return strconv.Itoa(defaultTimestampAfterMaxMs) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 0, 1<<63-1)
		tc.tsAfter = msDuration(n)
		return err
	}},
	{cfgTimestampBeforeMax, kmsg.ConfigTypeLong, func(*Broker) string { return strconv.FormatInt(defaultTimestampBeforeMaxMs, 10) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 0, 1<<63-1)
		tc.tsBefore = msDuration(n)
		return err
	}},
	{cfgMessageTimestampType, kmsg.ConfigTypeString, func(*Broker) string { return "CreateTime" }, func(tc *topicConfig, v string) error {
		switch v {
		case "CreateTime":
			tc.logAppendTime = false
		case "LogAppendTime":
			tc.logAppendTime = true
		default:
			return fmt.Errorf("must be CreateTime or LogAppendTime (got %q)", v)
		}
		return nil
	}},
	{cfgRetentionBytes, kmsg.ConfigTypeLong, func(*Broker) string { return strconv.FormatInt(defaultLogConfig().RetentionBytes, 10) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, -1, 1<<63-1)
		tc.log.RetentionBytes = n
		return err
	}},
	{cfgRetentionMs, kmsg.ConfigTypeLong, func(*Broker) string { return durationMs(defaultLogConfig().RetentionMs) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, -1, 1<<63-1)
		tc.log.RetentionMs = msDuration(n)
		return err
	}},
	{cfgSegmentBytes, kmsg.ConfigTypeInt, func(*Broker) string { return strconv.FormatInt(defaultLogConfig().SegmentBytes, 10) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 14, 1<<31-1)
		tc.log.SegmentBytes = n
		return err
	}},
	{cfgSegmentMs, kmsg.ConfigTypeLong, func(*Broker) string { return durationMs(defaultLogConfig().SegmentMs) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 1, 1<<63-1)
		tc.log.SegmentMs = msDuration(n)
		return err
	}},
}

func defaultLogConfig() storage.LogConfig { return storage.DefaultLogConfig() }

func findConfigDef(name string) (configDef, bool) {
	for _, d := range topicConfigDefs {
		if d.name == name {
			return d, true
		}
	}
	return configDef{}, false
}

// buildTopicConfig validates overrides and returns the effective config. The
// error names the offending config; callers answer INVALID_CONFIG with it.
func (b *Broker) buildTopicConfig(overrides map[string]string) (*topicConfig, error) {
	tc := &topicConfig{
		overrides:       make(map[string]string, len(overrides)),
		log:             defaultLogConfig(),
		maxMessageBytes: b.cfg.MaxMessageBytes,
		tsBefore:        msDuration(defaultTimestampBeforeMaxMs),
		tsAfter:         msDuration(defaultTimestampAfterMaxMs),
	}
	// Apply in a fixed order so the first error reported is deterministic.
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		v := overrides[name]
		d, ok := findConfigDef(name)
		if !ok {
			return nil, fmt.Errorf("unknown or unsupported topic config %q", name)
		}
		if err := d.apply(tc, v); err != nil {
			return nil, fmt.Errorf("invalid value %q for config %s: %w", v, name, err)
		}
		tc.overrides[name] = v
	}
	return tc, nil
}

// value returns the effective value of a topic config and whether it is set
// on the topic (rather than a default).
func (b *Broker) configValue(tc *topicConfig, d configDef) (string, bool) {
	if v, ok := tc.overrides[d.name]; ok {
		return v, true
	}
	return d.def(b), false
}

func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("must be in [%d, %d]", lo, hi)
	}
	return n, nil
}

// msDuration converts a Kafka millisecond config to a Duration, keeping
// negative values (meaning "unlimited") negative.
func msDuration(ms int64) time.Duration {
	if ms < 0 {
		return -1
	}
	if ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(ms) * time.Millisecond
}

func durationMs(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}
