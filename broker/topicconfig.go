package broker

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/storage"
)

// Topic configs. Every config here is applied as Kafka applies it (or, for
// delete.retention.ms and message.format.version, accepted with no effect,
// as Kafka itself has none for them on a topic that is not compacted, or
// since 3.0); every other name is refused with INVALID_CONFIG and a message
// that says whether Kafka knows it. So a client never believes a setting
// took effect when it did not.
//
// A topic config's value comes from, in order: the topic's override, the
// dynamic broker config of node 0, the dynamic cluster-wide default, the
// static broker config (a `spool serve` flag), Kafka's default.
// DescribeConfigs reports that chain as synonyms.
const (
	cfgCleanupPolicy        = "cleanup.policy"
	cfgCompressionType      = "compression.type"
	cfgDeleteRetentionMs    = "delete.retention.ms"
	cfgFlushMessages        = "flush.messages"
	cfgFlushMs              = "flush.ms"
	cfgIndexIntervalBytes   = "index.interval.bytes"
	cfgMaxMessageBytes      = "max.message.bytes"
	cfgMessageFormatVersion = "message.format.version"
	cfgMessageTimestampType = "message.timestamp.type"
	cfgTimestampAfterMax    = "message.timestamp.after.max.ms"
	cfgTimestampBeforeMax   = "message.timestamp.before.max.ms"
	cfgMinInsyncReplicas    = "min.insync.replicas"
	cfgRetentionBytes       = "retention.bytes"
	cfgRetentionMs          = "retention.ms"
	cfgSegmentBytes         = "segment.bytes"
	cfgSegmentMs            = "segment.ms"
)

// topicConfig is a topic's effective configuration: the explicitly set
// values (persisted in the metadata file) and what they mean for the log
// and the produce path. It is immutable once built; changes build a new one.
type topicConfig struct {
	overrides       map[string]string
	log             storage.LogConfig
	maxMessageBytes int32
	logAppendTime   bool
	codec           storage.Codec // compression.type; codecProducer keeps the producer's
	minInsync       int32
	// tsBefore and tsAfter bound CreateTime timestamps around the broker's
	// clock (message.timestamp.before/after.max.ms).
	tsBefore, tsAfter time.Duration
	dyn               *dynamicConfigs // the broker configs the defaults came from
}

// codecProducer is compression.type=producer: batches are stored as sent.
const codecProducer storage.Codec = -1

const maxLong = "9223372036854775807"

// configDef describes one topic config.
type configDef struct {
	name string
	// broker is the name of the broker-wide default (Kafka's synonym), ""
	// if it has none; dynamic says whether that one can be altered at run
	// time (Kafka's dynamic cluster-wide configs).
	broker  string
	dynamic bool
	typ     kmsg.ConfigType
	// kafka is Kafka's default; static the default this broker runs with
	// (its flags), reported as STATIC_BROKER_CONFIG when it differs.
	kafka  string
	static func(b *Broker) string
	apply  func(tc *topicConfig, v string) error
}

func fixed(v string) func(*Broker) string { return func(*Broker) string { return v } }

var topicConfigDefs = []configDef{
	{cfgCleanupPolicy, "log.cleanup.policy", true, kmsg.ConfigTypeList, "delete", fixed("delete"), func(_ *topicConfig, v string) error {
		for p := range strings.SplitSeq(v, ",") {
			switch strings.TrimSpace(p) {
			case "delete":
			case "compact":
				return fmt.Errorf("log compaction is not supported yet: only cleanup.policy=delete")
			default:
				return fmt.Errorf("must be a list of delete and compact (got %q)", v)
			}
		}
		return nil
	}},
	{cfgCompressionType, "compression.type", true, kmsg.ConfigTypeString, "producer", fixed("producer"), func(tc *topicConfig, v string) error {
		c, ok := compressionTypes[v]
		if !ok {
			return fmt.Errorf("must be one of producer, uncompressed, gzip, snappy, lz4, zstd (got %q)", v)
		}
		tc.codec = c
		return nil
	}},
	{cfgDeleteRetentionMs, "log.cleaner.delete.retention.ms", true, kmsg.ConfigTypeLong, "86400000", fixed("86400000"), func(_ *topicConfig, v string) error {
		// How long a compacted topic keeps tombstones: no effect on a
		// delete-policy topic, in Kafka as here.
		_, err := parseInt(v, 0, math.MaxInt64)
		return err
	}},
	{cfgFlushMessages, "log.flush.interval.messages", true, kmsg.ConfigTypeLong, maxLong, (*Broker).staticFlushMessages, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 1, math.MaxInt64)
		tc.log.FlushMessages = n
		return err
	}},
	{cfgFlushMs, "log.flush.interval.ms", true, kmsg.ConfigTypeLong, maxLong, (*Broker).staticFlushMs, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 0, math.MaxInt64)
		tc.log.FlushAfter = msDuration(n)
		if n == 0 {
			// Flush as soon as possible: every append waits for its fsync.
			tc.log.FlushAfter, tc.log.FlushMessages = 0, 1
		}
		return err
	}},
	{cfgIndexIntervalBytes, "log.index.interval.bytes", true, kmsg.ConfigTypeInt, "4096", fixed("4096"), func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 0, math.MaxInt32)
		tc.log.IndexIntervalBytes = int(max(n, 1)) // 0: an entry for every batch
		return err
	}},
	{cfgMaxMessageBytes, "message.max.bytes", true, kmsg.ConfigTypeInt, strconv.Itoa(defaultMaxMessageBytes), func(b *Broker) string { return strconv.Itoa(int(b.cfg.MaxMessageBytes)) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 0, math.MaxInt32)
		tc.maxMessageBytes = int32(n)
		return err
	}},
	{cfgMessageFormatVersion, "log.message.format.version", false, kmsg.ConfigTypeString, "3.0-IV1", fixed("3.0-IV1"), func(_ *topicConfig, v string) error {
		// Deprecated and ignored since Kafka 3.0 (the format is always v2),
		// but a value Kafka would refuse is refused.
		if !kafkaVersion.MatchString(v) {
			return fmt.Errorf("not a Kafka version such as 2.8 or 3.0-IV1 (got %q)", v)
		}
		return nil
	}},
	// Defaults as Kafka 4.0 has them (KIP-937): no bound into the past, one
	// hour into the future.
	{cfgTimestampAfterMax, "log.message.timestamp.after.max.ms", true, kmsg.ConfigTypeLong, "3600000", fixed("3600000"), func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 0, math.MaxInt64)
		tc.tsAfter = msDuration(n)
		return err
	}},
	{cfgTimestampBeforeMax, "log.message.timestamp.before.max.ms", true, kmsg.ConfigTypeLong, maxLong, fixed(maxLong), func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 0, math.MaxInt64)
		tc.tsBefore = msDuration(n)
		return err
	}},
	{cfgMessageTimestampType, "log.message.timestamp.type", true, kmsg.ConfigTypeString, "CreateTime", fixed("CreateTime"), func(tc *topicConfig, v string) error {
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
	{cfgMinInsyncReplicas, "min.insync.replicas", true, kmsg.ConfigTypeInt, "1", fixed("1"), func(tc *topicConfig, v string) error {
		// Applied as Kafka applies it to a topic with one replica: above 1,
		// an acks=all produce is refused with NOT_ENOUGH_REPLICAS.
		n, err := parseInt(v, 1, math.MaxInt32)
		tc.minInsync = int32(n)
		return err
	}},
	{cfgRetentionBytes, "log.retention.bytes", true, kmsg.ConfigTypeLong, "-1", func(b *Broker) string { return strconv.FormatInt(b.cfg.LogRetentionBytes, 10) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, -1, math.MaxInt64)
		tc.log.RetentionBytes = n
		if n == 0 {
			tc.log.RetentionBytes = storage.RetentionZero
		}
		return err
	}},
	{cfgRetentionMs, "log.retention.ms", true, kmsg.ConfigTypeLong, "604800000", func(b *Broker) string { return durationMs(b.cfg.LogRetention) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, -1, math.MaxInt64)
		tc.log.RetentionMs = msDuration(n)
		if n == 0 {
			tc.log.RetentionMs = storage.RetentionZero
		}
		return err
	}},
	{cfgSegmentBytes, "log.segment.bytes", true, kmsg.ConfigTypeInt, "1073741824", func(b *Broker) string { return strconv.FormatInt(b.cfg.LogSegmentBytes, 10) }, func(tc *topicConfig, v string) error {
		n, err := parseInt(v, minSegmentBytes, math.MaxInt32)
		tc.log.SegmentBytes = n
		return err
	}},
	{cfgSegmentMs, "log.roll.ms", true, kmsg.ConfigTypeLong, "604800000", fixed("604800000"), func(tc *topicConfig, v string) error {
		n, err := parseInt(v, 1, math.MaxInt64)
		tc.log.SegmentMs = msDuration(n)
		return err
	}},
}

// minSegmentBytes is the smallest segment.bytes: storage's smallest
// segment. (Kafka 3.x allows 14, Kafka 4 refuses less than 1 MiB.)
const minSegmentBytes = 1024

var compressionTypes = map[string]storage.Codec{
	"producer":     codecProducer,
	"uncompressed": storage.CodecNone,
	"gzip":         storage.CodecGzip,
	"snappy":       storage.CodecSnappy,
	"lz4":          storage.CodecLZ4,
	"zstd":         storage.CodecZstd,
}

var kafkaVersion = regexp.MustCompile(`^(0\.(8|9|10|11)(\.\d+){0,2}|[1-9]\d*\.\d+(\.\d+)?)(-IV\d+)?$`)

// knownUnsupported are topic configs Kafka has that Spool does not apply
// (yet), with the reason given to a client that sets one.
var knownUnsupported = map[string]string{
	"compression.gzip.level":                  "compression levels are not supported yet",
	"compression.lz4.level":                   "compression levels are not supported yet",
	"compression.zstd.level":                  "compression levels are not supported yet",
	"file.delete.delay.ms":                    "Spool deletes segments as soon as no reader holds them",
	"follower.replication.throttled.replicas": "Spool is a single node: there is no replication to throttle",
	"leader.replication.throttled.replicas":   "Spool is a single node: there is no replication to throttle",
	"local.retention.bytes":                   "tiered storage is not supported",
	"local.retention.ms":                      "tiered storage is not supported",
	"max.compaction.lag.ms":                   "log compaction is not supported yet",
	"message.downconversion.enable":           "Spool serves no fetch version that needs down-conversion",
	"message.timestamp.difference.max.ms":     "deprecated by Kafka (removed in 4.0): set message.timestamp.before.max.ms and message.timestamp.after.max.ms",
	"min.cleanable.dirty.ratio":               "log compaction is not supported yet",
	"min.compaction.lag.ms":                   "log compaction is not supported yet",
	"preallocate":                             "segment preallocation is not supported",
	"remote.log.copy.disable":                 "tiered storage is not supported",
	"remote.log.delete.on.disable":            "tiered storage is not supported",
	"remote.storage.enable":                   "tiered storage is not supported",
	"segment.index.bytes":                     "Spool's index files grow with their segment",
	"segment.jitter.ms":                       "segment roll jitter is not supported yet",
	"unclean.leader.election.enable":          "Spool is a single node: there is no leader election",
}

func findConfigDef(name string) (configDef, bool) {
	for _, d := range topicConfigDefs {
		if d.name == name {
			return d, true
		}
	}
	return configDef{}, false
}

// unknownConfig is the message for a config name Spool does not apply.
func unknownConfig(name string) error {
	if why, ok := knownUnsupported[name]; ok {
		return fmt.Errorf("topic config %s is not supported: %s", name, why)
	}
	return fmt.Errorf("unknown topic config %q", name)
}

func (b *Broker) staticFlushMessages() string {
	if b.cfg.Fsync == storage.FsyncAlways {
		return "1" // every acknowledged batch is fsynced
	}
	return maxLong
}

func (b *Broker) staticFlushMs() string {
	switch b.cfg.Fsync {
	case storage.FsyncAlways:
		return "0"
	case storage.FsyncInterval:
		return strconv.FormatInt(b.cfg.FsyncInterval.Milliseconds(), 10)
	}
	return maxLong
}

// dynamicConfigs are the broker configs altered at run time, persisted in
// the metadata file: node holds those set on broker "0", cluster the
// cluster-wide defaults (broker ""). Immutable: a change builds a new one
// and a topic snapshot (topicSet.dyn) with every topic's config rebuilt.
type dynamicConfigs struct {
	node, cluster map[string]string
}

// dyn returns the dynamic broker configs in effect (part of the topic
// snapshot, so a topic's config and the defaults it came from change
// together).
func (b *Broker) dyn() *dynamicConfigs {
	if d := b.topics().dyn; d != nil {
		return d
	}
	return &dynamicConfigs{}
}

// synonym is one level of a config's value chain.
type synonym struct {
	name, value string
	src         kmsg.ConfigSource
}

// brokerChain returns the values of d's broker-wide default from the
// highest precedence down, with dyn the dynamic broker configs; the first
// is the one in effect.
func (b *Broker) brokerChain(d configDef, dyn *dynamicConfigs) []synonym {
	var out []synonym
	if d.broker != "" {
		if v, ok := dyn.node[d.broker]; ok {
			out = append(out, synonym{d.broker, v, kmsg.ConfigSourceDynamicBrokerConfig})
		}
		if v, ok := dyn.cluster[d.broker]; ok {
			out = append(out, synonym{d.broker, v, kmsg.ConfigSourceDynamicDefaultBrokerConfig})
		}
	}
	if s := d.static(b); s != d.kafka {
		out = append(out, synonym{cmp(d.broker, d.name), s, kmsg.ConfigSourceStaticBrokerConfig})
	}
	return append(out, synonym{cmp(d.broker, d.name), d.kafka, kmsg.ConfigSourceDefaultConfig})
}

// topicChain is brokerChain with the topic's override in front.
func (b *Broker) topicChain(tc *topicConfig, d configDef) []synonym {
	chain := b.brokerChain(d, tc.dyn)
	if v, ok := tc.overrides[d.name]; ok {
		chain = append([]synonym{{d.name, v, kmsg.ConfigSourceDynamicTopicConfig}}, chain...)
	}
	return chain
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// buildTopicConfig validates overrides and returns the effective config,
// with the broker-wide defaults in effect for the rest. The error names the
// offending config; callers answer INVALID_CONFIG with it.
func (b *Broker) buildTopicConfig(overrides map[string]string) (*topicConfig, error) {
	return b.buildTopicConfigWith(b.dyn(), overrides)
}

// buildTopicConfigWith is buildTopicConfig with dyn as the dynamic broker
// configs (the new ones, while they are being altered).
func (b *Broker) buildTopicConfigWith(dyn *dynamicConfigs, overrides map[string]string) (*topicConfig, error) {
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		if _, ok := findConfigDef(name); !ok {
			return nil, unknownConfig(name)
		}
	}
	tc := &topicConfig{overrides: make(map[string]string, len(overrides)), log: storage.DefaultLogConfig(), dyn: dyn}
	// Apply in a fixed order so the first error reported is deterministic.
	for _, d := range topicConfigDefs {
		v, set := overrides[d.name]
		if !set {
			v = b.brokerChain(d, dyn)[0].value
		}
		if err := d.apply(tc, v); err != nil {
			if !set {
				return nil, fmt.Errorf("broker default %s=%q: %w", d.broker, v, err)
			}
			return nil, fmt.Errorf("invalid value %q for config %s: %w", v, d.name, err)
		}
		if set {
			tc.overrides[d.name] = v
		}
	}
	// Fsyncs the broker's mode already makes need no timer of their own.
	switch {
	case b.cfg.Fsync == storage.FsyncAlways:
		tc.log.FlushMessages, tc.log.FlushAfter = 0, 0
	case b.cfg.Fsync == storage.FsyncInterval && tc.log.FlushAfter >= b.cfg.FsyncInterval:
		tc.log.FlushAfter = 0
	}
	if tc.log.FlushAfter >= msDuration(math.MaxInt64) {
		tc.log.FlushAfter = 0
	}
	if tc.log.FlushMessages == math.MaxInt64 {
		tc.log.FlushMessages = 0
	}
	return tc, nil
}

func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
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
	if ms > int64(time.Duration(math.MaxInt64)/time.Millisecond) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

func durationMs(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}
