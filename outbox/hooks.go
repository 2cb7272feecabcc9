package outbox

import "time"

// Hooks receive the relay's events, for metrics (outbox/outboxprom is the
// Prometheus adapter). Methods are called from the relay's goroutines and
// must not block.
type Hooks interface {
	// Published is called once per row the broker acknowledged, with the
	// time from its Add to the acknowledgement (commit to ack, plus the
	// time between Add and the transaction's commit).
	Published(topic string, commitToAck time.Duration)
	// Failed is called once per row the broker (or the relay's own size
	// check) failed. rejected is true for a permanent refusal: the row is
	// marked rejected and its key stops until Requeue or Discard; false
	// for an error the relay retries.
	Failed(topic string, err error, rejected bool)
	// Backlog is called every StatsInterval per topic with rows still to
	// publish (pending, rejected ones included), how many of them are
	// rejected, and the age of the oldest. A topic whose backlog emptied is
	// reported once more with zeros.
	Backlog(topic string, pending, rejected int64, oldest time.Duration)
	// Leased is called after each lease round with the buckets held.
	Leased(buckets int)
}

// NopHooks implements Hooks with no-ops; embed it to implement a subset.
type NopHooks struct{}

func (NopHooks) Published(string, time.Duration)             {}
func (NopHooks) Failed(string, error, bool)                  {}
func (NopHooks) Backlog(string, int64, int64, time.Duration) {}
func (NopHooks) Leased(int)                                  {}
