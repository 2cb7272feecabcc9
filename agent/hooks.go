package agent

import (
	"sync/atomic"
	"time"
)

// Outcome is what became of one handler attempt or one event.
type Outcome int

// The outcomes reported to Hooks.Outcome.
const (
	OutcomeSucceeded    Outcome = iota // handler returned nil
	OutcomeWarned                      // handler returned Warn; the event is done
	OutcomeRetried                     // a retry was scheduled
	OutcomeDeadLettered                // published to the dead-letter topic; the event is done
	OutcomeSkipped                     // no handler for the type; the event is done
	OutcomeKilled                      // handler returned Kill
	OutcomeHalted                      // attempts exhausted under OnExhaustedHalt
	OutcomeDeferred                    // moved to the retry topic behind an earlier event of its key (WithRetryTopic)
)

var outcomeNames = [...]string{"succeeded", "warned", "retried", "dead_lettered", "skipped", "killed", "halted", "deferred"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Hooks receives the agent's events for metrics. Methods are called from
// handler goroutines concurrently and must be fast. Embed NopHooks to
// implement only some.
type Hooks interface {
	// HandlerStarted is called before each handler call.
	HandlerStarted(m *Message)
	// HandlerDone is called after each handler call with its duration and
	// its (possibly flagged) error.
	HandlerDone(m *Message, d time.Duration, err error)
	// Outcome is called once per outcome: once per scheduled retry, once
	// when an event is done (succeeded, warned, dead-lettered, skipped), and
	// on kill or halt.
	Outcome(m *Message, o Outcome, err error)
}

// NopHooks implements Hooks with no-ops.
type NopHooks struct{}

func (NopHooks) HandlerStarted(*Message)                    {}
func (NopHooks) HandlerDone(*Message, time.Duration, error) {}
func (NopHooks) Outcome(*Message, Outcome, error)           {}

// Stats are the agent's counters since New.
type Stats struct {
	Succeeded    int64
	Warned       int64
	Retried      int64
	DeadLettered int64
	Skipped      int64
	Killed       int64
	Halted       int64
	Deferred     int64 // moved to the retry topic behind their key (WithRetryTopic)
	InFlight     int64 // handlers running now
}

type counters struct {
	outcomes [len(outcomeNames)]atomic.Int64
	inFlight atomic.Int64
}

func (c *counters) stats() Stats {
	return Stats{
		Succeeded:    c.outcomes[OutcomeSucceeded].Load(),
		Warned:       c.outcomes[OutcomeWarned].Load(),
		Retried:      c.outcomes[OutcomeRetried].Load(),
		DeadLettered: c.outcomes[OutcomeDeadLettered].Load(),
		Skipped:      c.outcomes[OutcomeSkipped].Load(),
		Killed:       c.outcomes[OutcomeKilled].Load(),
		Halted:       c.outcomes[OutcomeHalted].Load(),
		Deferred:     c.outcomes[OutcomeDeferred].Load(),
		InFlight:     c.inFlight.Load(),
	}
}
