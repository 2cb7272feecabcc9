package agent

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultReceiptsTopic is where WithReceipts publishes unless
// WithReceiptsTopic names another; lookback reads receipts from it.
const DefaultReceiptsTopic = "spool.receipts"

// Replay headers: lookback sets them on every record it replays (see
// docs/lookback.md). Their names are part of the wire contract.
const (
	// HeaderReplayID names the replay that produced the record.
	HeaderReplayID = "spool_replay_id"
	// HeaderReplayOf is the replayed event's original place,
	// "topic/partition/offset".
	HeaderReplayOf = "spool_replay_of"
)

// ReplayTopic is the replay topic of a consumer group: lookback replays
// "to a group" into it, and only agents of that group with WithReplay
// read it.
func ReplayTopic(group string) string { return "spool.replay." + group }

// WithReceipts makes the agent publish a receipt for every event it
// finishes, overriding the default of publishing none. A receipt is a JSON
// record on the receipts topic (DefaultReceiptsTopic unless
// WithReceiptsTopic says otherwise; it must exist or be auto-created):
//
//	{"group": "billing", "event_id": "0193...", "topic": "orders",
//	 "partition": 3, "offset": 1207, "outcome": "success", "attempts": 1,
//	 "duration_ms": 2.4, "time": "2026-12-01T10:00:00.123Z"}
//
// outcome is "success", "warning", "dead-letter" or "skipped" (no
// handler). Retries, kills and halts do not finish an event and have no
// receipt. duration_ms is the last handler call's. The receipt is
// published (acknowledged by the broker) before the event counts as
// finished, so before its offset can be committed; a receipt whose publish
// fails is logged and the event finishes without it. Replayed events get
// receipts under their original topic, partition and offset.
func WithReceipts() Option {
	return func(c *config) {
		if c.receiptsTopic == "" {
			c.receiptsTopic = DefaultReceiptsTopic
		}
	}
}

// WithReceiptsTopic sets the receipts topic and enables receipts,
// overriding the default DefaultReceiptsTopic.
func WithReceiptsTopic(topic string) Option { return func(c *config) { c.receiptsTopic = topic } }

// WithReplay makes the agent also consume its group's replay topic
// (ReplayTopic(group)), overriding the default of consuming only its
// topics. `spool lookback replay --to-group G` sends events there, so only
// group G's agents handle them again, with the same handlers (routing is
// by ce_type). A replayed record's Message.Record carries the event's
// original topic, partition and offset, and Message.ReplayID names the
// replay. The replay topic must exist when Run starts (lookback creates it
// before replaying); WithReplay cannot be combined with WithRetryTopic.
func WithReplay() Option { return func(c *config) { c.replay = true } }

type receiptWire struct {
	Group      string    `json:"group"`
	EventID    string    `json:"event_id,omitempty"`
	Topic      string    `json:"topic"`
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"`
	Outcome    string    `json:"outcome"`
	Attempts   int       `json:"attempts"`
	DurationMS float64   `json:"duration_ms"`
	Time       time.Time `json:"time"`
}

var receiptOutcomes = map[Outcome]string{
	OutcomeSucceeded:    "success",
	OutcomeWarned:       "warning",
	OutcomeDeadLettered: "dead-letter",
	OutcomeSkipped:      "skipped",
}

// receipt publishes m's receipt if receipts are on and o finishes it.
func (a *Agent) receipt(m *Message, o Outcome) {
	name, ok := receiptOutcomes[o]
	if a.cfg.receiptsTopic == "" || !ok {
		return
	}
	w := receiptWire{Group: a.group, Topic: m.Record.Topic, Partition: m.Record.Partition, Offset: m.Record.Offset,
		Outcome: name, Attempts: max(m.Attempt, 1), DurationMS: float64(m.took.Microseconds()) / 1000, Time: time.Now().UTC()}
	if m.Event != nil {
		w.EventID = m.ID
	}
	b, _ := json.Marshal(w)
	rec := &kgo.Record{Topic: a.cfg.receiptsTopic, Key: []byte(w.EventID), Value: b,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}}
	if err := a.cl.ProduceSync(a.handlerCtx, rec).FirstErr(); err != nil {
		a.cfg.log.Error("agent: receipt not published", append(a.attrs(m, err), "receipts_topic", a.cfg.receiptsTopic)...)
	}
}

// replayOrigin returns the original record of a replayed record: a
// shallow copy with the topic, partition and offset of its
// spool_replay_of header, and the replay id. ok is false for a record that
// is not a replay.
func replayOrigin(r *kgo.Record) (orig *kgo.Record, id string, ok bool) {
	var of string
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderReplayOf:
			of = string(h.Value)
		case HeaderReplayID:
			id = string(h.Value)
		}
	}
	i := strings.LastIndexByte(of, '/')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(of[:i], '/')
	}
	if j <= 0 {
		return nil, "", false
	}
	p, err1 := strconv.ParseInt(of[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(of[i+1:], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, "", false
	}
	c := *r
	c.Topic, c.Partition, c.Offset = of[:j], int32(p), o
	return &c, id, true
}
