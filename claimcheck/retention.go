package claimcheck

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// kafkaDefaultSegmentMs is Kafka's segment.ms default (7 days), assumed for
// a broker that does not report the config.
const kafkaDefaultSegmentMs = 7 * 24 * time.Hour

// Retention is how long a record of some topics can still be read after
// its timestamp, as TopicRetention reads it from their configs.
type Retention struct {
	// Age is the longest, over the topics, of retention.ms plus
	// segment.ms. The broker deletes whole segments, and a segment only
	// once its newest record is older than retention.ms; a segment is
	// rolled (closed) at the latest segment.ms after its first record, so
	// a record can be read for up to retention.ms + segment.ms. Zero when
	// Forever.
	Age time.Duration
	// Forever is set when some topic keeps its records forever
	// (retention.ms -1, or a cleanup.policy without "delete", that is a
	// compacted topic): no blob may then be swept by age.
	Forever bool
	// Topic is the topic that Age (or Forever) comes from.
	Topic string
}

// String describes r for logs.
func (r Retention) String() string {
	if r.Forever {
		return fmt.Sprintf("topic %s keeps records forever", r.Topic)
	}
	return fmt.Sprintf("topic %s keeps records readable up to %v (retention.ms + segment.ms)", r.Topic, r.Age)
}

// TopicRetention reads retention.ms, segment.ms and cleanup.policy of the
// topics whose records refer to a blob store (through DescribeConfigs)
// and returns the longest time one of their records can be read: blobs
// older than that (plus a margin, see WithGrace) have no record left. List
// every topic that carries references: the topic itself, and its retry and
// dead-letter topics. A topic that does not exist is an error naming it;
// so is a config the broker does not report or that is not a number.
func TopicRetention(ctx context.Context, adm *kadm.Client, topics ...string) (Retention, error) {
	if len(topics) == 0 {
		return Retention{}, errors.New("claimcheck: retention: no topics given")
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return Retention{}, fmt.Errorf("claimcheck: retention: describe configs of %s: %w", strings.Join(topics, ","), err)
	}
	var longest Retention
	for _, t := range topics {
		rc, err := rcs.On(t, nil)
		if err == nil {
			err = rc.Err
		}
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return Retention{}, fmt.Errorf("claimcheck: retention: topic %q does not exist: %w", t, err)
		}
		if err != nil {
			return Retention{}, fmt.Errorf("claimcheck: retention: topic %q: %w", t, err)
		}
		r, err := retentionOf(t, rc.Configs)
		if err != nil {
			return Retention{}, err
		}
		if r.Forever {
			return r, nil
		}
		if r.Age > longest.Age || longest.Topic == "" {
			longest = r
		}
	}
	return longest, nil
}

// retentionOf reads one topic's Retention from its configs.
func retentionOf(topic string, cfgs []kadm.Config) (Retention, error) {
	val := func(key string) (string, bool) {
		for _, c := range cfgs {
			if c.Key == key && c.Value != nil {
				return *c.Value, true
			}
		}
		return "", false
	}
	if p, ok := val("cleanup.policy"); ok && !hasPolicy(p, "delete") {
		return Retention{Forever: true, Topic: topic}, nil // compacted: the latest record of a key stays
	}
	v, ok := val("retention.ms")
	if !ok {
		return Retention{}, fmt.Errorf("claimcheck: retention: topic %q: the broker did not report retention.ms (give a maximum age instead)", topic)
	}
	ret, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ret < -1 {
		return Retention{}, fmt.Errorf("claimcheck: retention: topic %q: retention.ms %q is not -1 or a number of milliseconds", topic, v)
	}
	if ret == -1 {
		return Retention{Forever: true, Topic: topic}, nil
	}
	seg := int64(kafkaDefaultSegmentMs / time.Millisecond)
	if v, ok := val("segment.ms"); ok {
		if seg, err = strconv.ParseInt(v, 10, 64); err != nil || seg < 0 {
			return Retention{}, fmt.Errorf("claimcheck: retention: topic %q: segment.ms %q is not a number of milliseconds", topic, v)
		}
	}
	// Values near Kafka's maximum (Long.MAX_VALUE ms) do not fit a
	// Duration: they mean forever in practice.
	const half = int64(1<<63-1) / int64(time.Millisecond) / 2
	if ret > half || seg > half {
		return Retention{Forever: true, Topic: topic}, nil
	}
	return Retention{Age: time.Duration(ret+seg) * time.Millisecond, Topic: topic}, nil
}

func hasPolicy(list, p string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == p {
			return true
		}
	}
	return false
}
