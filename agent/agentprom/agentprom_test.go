package agentprom

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
)

func msg(typ string) *agent.Message {
	return &agent.Message{Event: &event.Event{Type: typ}, Group: "g", Record: &kgo.Record{Topic: "orders"}}
}

func TestHooks(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m := msg("order.placed")
	h.HandlerStarted(m)
	if got := testutil.ToFloat64(h.inFlight.WithLabelValues("g")); got != 1 {
		t.Fatalf("in flight = %v, want 1", got)
	}
	h.HandlerDone(m, 3*time.Millisecond, nil)
	h.Outcome(m, agent.OutcomeSucceeded, nil)
	h.Outcome(m, agent.OutcomeDeadLettered, nil)

	want := `
# HELP spool_agent_events_total Events by outcome: succeeded, warned, retried (per retry), dead_lettered, skipped, killed, halted, deferred (moved behind its key to the retry topic).
# TYPE spool_agent_events_total counter
spool_agent_events_total{group="g",outcome="dead_lettered",topic="orders"} 1
spool_agent_events_total{group="g",outcome="succeeded",topic="orders"} 1
# HELP spool_agent_in_flight Handlers running now.
# TYPE spool_agent_in_flight gauge
spool_agent_in_flight{group="g"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "spool_agent_events_total", "spool_agent_in_flight"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(h.latency); n != 1 {
		t.Fatalf("%d handler latency series, want 1", n)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("registering twice succeeded")
	}
}

// TestTypeLabelBounded: a producer sending ever new event types creates at
// most MaxTypes+1 latency series.
func TestTypeLabelBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * MaxTypes {
		h.HandlerDone(msg(fmt.Sprintf("type-%d", i)), time.Millisecond, nil)
	}
	h.HandlerDone(msg("type-0"), time.Millisecond, nil) // an early type keeps its label
	if n := testutil.CollectAndCount(h.latency); n != MaxTypes+1 {
		t.Fatalf("%d series, want %d", n, MaxTypes+1)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var other uint64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == OtherType {
					other = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if other != 2*MaxTypes {
		t.Fatalf("%q series counted %d calls, want %d", OtherType, other, 2*MaxTypes)
	}
}
