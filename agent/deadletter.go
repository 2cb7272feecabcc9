package agent

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Dead-letter records keep the original key, value and headers and add
// these headers (replacing any dlq_* headers from an earlier dead-lettering).
// The names are part of the wire contract; redrive tools read them.
//
//	header                   value
//	dlq_reason               ReasonDeadLetter, ReasonRetriesExhausted, ReasonMalformed or ReasonClaimMissing
//	dlq_error                the handler's error text
//	dlq_original_topic       topic the event was consumed from
//	dlq_original_partition   its partition (decimal)
//	dlq_original_offset      its offset (decimal)
//	dlq_original_timestamp   its record timestamp, RFC 3339 UTC with milliseconds
//	dlq_group                the consumer group that gave up on it
//	dlq_attempts             handler calls made (decimal; 0 for malformed)
//	dlq_time                 when it was dead-lettered, RFC 3339 UTC with milliseconds
const (
	HeaderDLQReason            = "dlq_reason"
	HeaderDLQError             = "dlq_error"
	HeaderDLQOriginalTopic     = "dlq_original_topic"
	HeaderDLQOriginalPartition = "dlq_original_partition"
	HeaderDLQOriginalOffset    = "dlq_original_offset"
	HeaderDLQOriginalTimestamp = "dlq_original_timestamp"
	HeaderDLQGroup             = "dlq_group"
	HeaderDLQAttempts          = "dlq_attempts"
	HeaderDLQTime              = "dlq_time"
)

// Values of the dlq_reason header.
const (
	ReasonDeadLetter       = "dead-letter"       // the handler returned DeadLetter
	ReasonRetriesExhausted = "retries-exhausted" // attempts used up under OnExhaustedDeadLetter
	ReasonMalformed        = "malformed"         // the envelope could not be decoded
	ReasonClaimMissing     = "claim-missing"     // WithClaimCheck: the payload's blob is gone or does not match
)

const dlqTimeFormat = "2006-01-02T15:04:05.000Z07:00"

type pendingDLQ struct {
	reason string
	err    error
}

// DeadLetterRecord builds the dead-letter record for r. It is exported so
// tools that dead-letter by hand write the same header set.
func DeadLetterRecord(topic string, r *kgo.Record, group, reason string, attempts int, cause error, now time.Time) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+9)
	for _, h := range r.Headers {
		if !strings.HasPrefix(h.Key, "dlq_") {
			hs = append(hs, h)
		}
	}
	errText := ""
	if cause != nil {
		errText = cause.Error()
	}
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(HeaderDLQReason, reason)
	add(HeaderDLQError, errText)
	add(HeaderDLQOriginalTopic, r.Topic)
	add(HeaderDLQOriginalPartition, strconv.FormatInt(int64(r.Partition), 10))
	add(HeaderDLQOriginalOffset, strconv.FormatInt(r.Offset, 10))
	add(HeaderDLQOriginalTimestamp, r.Timestamp.UTC().Format(dlqTimeFormat))
	add(HeaderDLQGroup, group)
	add(HeaderDLQAttempts, strconv.Itoa(attempts))
	add(HeaderDLQTime, now.UTC().Format(dlqTimeFormat))
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: hs}
}

// deadLetter publishes it to the dead-letter topic and waits for the ack,
// creating the topic if it does not exist.
// If the publish fails, the item stays unfinished and is tried again after
// a backoff, without calling the handler again.
func (a *Agent) deadLetter(m *Message, it *item, reason string, cause error) result {
	orig := it.rec
	if src := a.sourceOf(orig.Topic); src != "" {
		orig = originalRecord(orig, src, it.rt.origOffset) // parked: name where it came from
	}
	rec := DeadLetterRecord(a.cfg.dlqTopic(orig.Topic), orig, a.group, reason, int(it.attempts), cause, time.Now())
	// A command someone waits for (a gateway request) is answered with the
	// failure before it is dead-lettered; if the dead letter then fails,
	// the retry replies again, which the requester ignores (a request
	// finishes once).
	err := a.replyDeadLetter(m, orig, reason, cause)
	if err == nil {
		err = a.cl.ProduceSync(a.handlerCtx, rec).FirstErr()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		// Create the dead-letter topic with the broker's defaults (another
		// member may race us: "already exists" is fine), then publish again.
		resp, cerr := kadm.NewClient(a.cl).CreateTopic(a.handlerCtx, -1, -1, nil, rec.Topic)
		if cerr == nil {
			cerr = resp.Err
		}
		if cerr == nil || errors.Is(cerr, kerr.TopicAlreadyExists) {
			err = a.cl.ProduceSync(a.handlerCtx, rec).FirstErr()
		}
	}
	if err != nil {
		if it.dlq == nil {
			it.dlq = &pendingDLQ{reason: reason, err: cause}
		}
		a.cfg.log.Error("agent: dead-letter publish failed, will retry", append(a.attrs(m, cause), "publish_err", err)...)
		if a.handlerCtx.Err() != nil {
			return result{}
		}
		return result{retry: a.backoff(1)}
	}
	it.dlq = nil
	a.cfg.log.Warn("agent: dead-lettered", append(a.attrs(m, cause), "reason", reason, "dlq", rec.Topic)...)
	a.outcome(m, OutcomeDeadLettered, cause)
	return result{done: true}
}
