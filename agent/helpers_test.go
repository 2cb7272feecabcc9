package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/producer"
)

// fastOpts are agent options for tests: quick group failure detection, short
// backoffs and commits.
func fastOpts(addrs []string) []agent.Option {
	return []agent.Option{
		agent.WithBrokers(addrs...),
		agent.WithClientOptions(
			kgo.SessionTimeout(kafkatest.SessionTimeout(addrs)), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		),
		agent.WithBackoff(time.Millisecond, 5*time.Millisecond),
		agent.WithCommitInterval(50 * time.Millisecond),
		agent.WithLogger(testLogger()),
	}
}

type published struct {
	ev  *event.Event
	rec *kgo.Record
}

// publish publishes n events per key in order, with type typ and payload
// "<key>#<i>", and returns them in publish order.
func publish(t testing.TB, addrs []string, topic, typ string, keys []string, n int) []published {
	t.Helper()
	return publishRange(t, addrs, topic, typ, keys, 0, n)
}

// publishRange is publish for the payloads "<key>#<from>" to "<key>#<to-1>".
func publishRange(t testing.TB, addrs []string, topic, typ string, keys []string, from, to int) []published {
	t.Helper()
	p, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/test"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out []published
	for i := from; i < to; i++ {
		for _, k := range keys {
			ev, err := event.New(typ, event.Raw, fmt.Sprintf("%s#%d", k, i))
			if err != nil {
				t.Fatal(err)
			}
			ev.Key = []byte(k)
			r, err := p.Publish(context.Background(), topic, ev)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, published{ev, r.Record})
		}
	}
	return out
}

// running is an agent running in the background.
type running struct {
	a    *agent.Agent
	stop context.CancelFunc
	done chan error
}

func start(t testing.TB, group string, topics []string, opts ...agent.Option) *running {
	t.Helper()
	a, err := agent.New(group, topics, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// wait waits for Run to return and returns its error.
func (r *running) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop")
		return nil
	}
}

// shutdown cancels the agent and requires a clean stop.
func (r *running) shutdown(t testing.TB) {
	t.Helper()
	r.stop()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// journal records handler calls, concurrency-safe.
type journal struct {
	mu    sync.Mutex
	calls []string // payloads in call order
	byKey map[string][]string
}

func (j *journal) add(m *agent.Message) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.byKey == nil {
		j.byKey = map[string][]string{}
	}
	j.calls = append(j.calls, string(m.Data))
	j.byKey[string(m.Key)] = append(j.byKey[string(m.Key)], string(m.Data))
}

func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.calls)
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

var errBoom = errors.New("boom")

// ends returns the end offset per partition of what was published.
func ends(ps []published) map[int32]int64 {
	out := map[int32]int64{}
	for _, p := range ps {
		out[p.rec.Partition] = max(out[p.rec.Partition], p.rec.Offset+1)
	}
	return out
}

func waitCommitted(t testing.TB, addrs []string, group, topic string, want map[int32]int64) {
	t.Helper()
	kafkatest.Eventually(t, 30*time.Second, "commits reach "+fmt.Sprint(want), func() bool {
		got := kafkatest.Committed(t, addrs, group, topic)
		for p, o := range want {
			if got[p] != o {
				return false
			}
		}
		return true
	})
}

// membersWithPartitions is the number of group's members assigned at least
// one partition of topic.
func membersWithPartitions(t *testing.T, addrs []string, group, topic string) int {
	t.Helper()
	adm, closeAdm := newAdmin(t, addrs)
	defer closeAdm()
	gs, err := adm.DescribeGroups(context.Background(), group)
	if err != nil {
		return 0
	}
	n := 0
	for _, m := range gs[group].Members {
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range ca.Topics {
				if tp.Topic == topic && len(tp.Partitions) > 0 {
					n++
					break
				}
			}
		}
	}
	return n
}

func testLogger() *slog.Logger {
	if os.Getenv("AGENT_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}
