package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
)

func TestVerdictOf(t *testing.T) {
	wrapped := fmt.Errorf("context: %w", agent.Retry(errBoom))
	for _, c := range []struct {
		err  error
		want agent.Verdict
		is   error
	}{
		{nil, agent.VerdictSuccess, nil},
		{errBoom, agent.VerdictDefault, nil},
		{agent.Warn(errBoom), agent.VerdictWarn, agent.ErrWarn},
		{agent.Retry(errBoom), agent.VerdictRetry, agent.ErrRetry},
		{wrapped, agent.VerdictRetry, agent.ErrRetry},
		{agent.DeadLetter(errBoom), agent.VerdictDeadLetter, agent.ErrDeadLetter},
		{agent.Kill(errBoom), agent.VerdictKill, agent.ErrKill},
	} {
		if v, _ := agent.VerdictOf(c.err); v != c.want {
			t.Errorf("VerdictOf(%v) = %v, want %v", c.err, v, c.want)
		}
		if c.is != nil && !errors.Is(c.err, c.is) {
			t.Errorf("errors.Is(%v, %v) = false", c.err, c.is)
		}
		if c.err != nil && c.want != agent.VerdictDefault && !errors.Is(c.err, errBoom) {
			t.Errorf("%v does not unwrap to its cause", c.err)
		}
	}
	if v, d := agent.VerdictOf(agent.RetryAfter(time.Minute, nil)); v != agent.VerdictRetry || d != time.Minute {
		t.Errorf("RetryAfter = %v %v", v, d)
	}
	if errors.Is(agent.Warn(errBoom), agent.ErrRetry) {
		t.Error("a warning matches ErrRetry")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, c := range map[string]struct {
		group  string
		topics []string
		opts   []agent.Option
	}{
		"no group":       {"", []string{"t"}, nil},
		"no topics":      {"g", nil, nil},
		"concurrency 0":  {"g", []string{"t"}, []agent.Option{agent.WithConcurrency(0)}},
		"window 0":       {"g", []string{"t"}, []agent.Option{agent.WithWindow(0)}},
		"attempts 0":     {"g", []string{"t"}, []agent.Option{agent.WithMaxAttempts(0)}},
		"backoff max<lo": {"g", []string{"t"}, []agent.Option{agent.WithBackoff(time.Second, time.Millisecond)}},
	} {
		if _, err := agent.New(c.group, c.topics, c.opts...); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// Option values that would panic or spin once the agent runs (a zero
// commit interval panicked in time.NewTicker) are refused by New with an
// error naming the option.
func TestNewRejectsOptionsThatWouldPanic(t *testing.T) {
	for name, c := range map[string]struct {
		opt  agent.Option
		want string
	}{
		"commit interval 0":   {agent.WithCommitInterval(0), "WithCommitInterval(0s)"},
		"commit interval <0":  {agent.WithCommitInterval(-time.Second), "WithCommitInterval(-1s)"},
		"revoke timeout 0":    {agent.WithRevokeTimeout(0), "WithRevokeTimeout(0s)"},
		"shutdown timeout 0":  {agent.WithShutdownTimeout(0), "WithShutdownTimeout(0s)"},
		"policy out of range": {agent.WithOnExhausted(agent.Exhausted(7)), "WithOnExhausted(7)"},
		"nil handler":         {agent.WithHandler("order.placed", nil), `WithHandler("order.placed", nil)`},
		"nil dead letter":     {agent.WithDeadLetterTopic(nil), "WithDeadLetterTopic(nil)"},
		"nil retry name":      {agent.WithRetryTopicName(nil), "WithRetryTopicName(nil)"},
		"nil logger":          {agent.WithLogger(nil), "WithLogger(nil)"},
		"nil hooks":           {agent.WithHooks(nil), "WithHooks(nil)"},
		"nil propagator":      {agent.WithPropagator(nil), "WithPropagator(nil)"},
	} {
		_, err := agent.New("g", []string{"t"}, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New: %v, want an error naming %s", name, err, c.want)
		}
	}
}

// TestVerdicts runs each verdict and policy on every cluster.
func TestVerdicts(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		t.Run("success-warn-skip-default", func(t *testing.T) { testSuccessWarnSkip(t, addrs) })
		t.Run("retry-holds-key-only", func(t *testing.T) { testRetryHoldsKey(t, addrs) })
		t.Run("dead-letter", func(t *testing.T) { testDeadLetter(t, addrs) })
		t.Run("exhausted-dead-letter", func(t *testing.T) { testExhaustedDLQ(t, addrs) })
		t.Run("exhausted-halt", func(t *testing.T) { testExhaustedHalt(t, addrs) })
		t.Run("kill", func(t *testing.T) { testKill(t, addrs) })
		t.Run("malformed", func(t *testing.T) { testMalformed(t, addrs) })
	})
}

func testSuccessWarnSkip(t *testing.T, addrs []string) {
	const topic, group = "sws", "sws-g"
	kafkatest.CreateTopic(t, addrs, topic, 2)
	ok := publish(t, addrs, topic, "ok", []string{"a", "b"}, 3)
	warn := publish(t, addrs, topic, "warn", []string{"a"}, 2)
	unknown := publish(t, addrs, topic, "unknown", []string{"c"}, 2)
	all := append(append(append([]published{}, ok...), warn...), unknown...)

	var okJ, warnJ journal
	r := start(t, group, []string{topic}, append(fastOpts(addrs),
		agent.WithHandler("ok", func(_ context.Context, m *agent.Message) error { okJ.add(m); return nil }),
		agent.WithHandler("warn", func(_ context.Context, m *agent.Message) error { warnJ.add(m); return agent.Warn(errBoom) }),
	)...)
	waitCommitted(t, addrs, group, topic, ends(all))
	s := r.a.Stats()
	if s.Succeeded != 6 || s.Warned != 2 || s.Skipped != 2 || s.Retried != 0 || s.DeadLettered != 0 {
		t.Fatalf("stats %+v", s)
	}
	if okJ.len() != 6 || warnJ.len() != 2 {
		t.Fatalf("ok handler saw %d, warn handler %d", okJ.len(), warnJ.len())
	}
	r.shutdown(t)

	// With a default handler, unknown types reach it.
	var def journal
	r = start(t, group+"-default", []string{topic}, append(fastOpts(addrs),
		agent.WithDefaultHandler(func(_ context.Context, m *agent.Message) error { def.add(m); return nil }))...)
	waitCommitted(t, addrs, group+"-default", topic, ends(all))
	if def.len() != len(all) || r.a.Stats().Skipped != 0 {
		t.Fatalf("default handler saw %d of %d; stats %+v", def.len(), len(all), r.a.Stats())
	}
	r.shutdown(t)
}

// testRetryHoldsKey: key "slow"'s first event retries until every event of
// the other keys is handled; its second event must wait behind it.
func testRetryHoldsKey(t *testing.T, addrs []string) {
	const topic, group = "rk", "rk-g"
	kafkatest.CreateTopic(t, addrs, topic, 1) // one partition: other keys share it
	pub := publish(t, addrs, topic, "t", []string{"slow", "x", "y"}, 2)
	var others atomic.Int32
	othersDone := make(chan struct{})
	var j journal
	var slowCalls atomic.Int32
	r := start(t, group, []string{topic}, append(fastOpts(addrs),
		agent.WithConcurrency(4), agent.WithMaxAttempts(100000),
		agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
			if string(m.Data) == "slow#0" {
				// The first call always retries, so the test holds the key
				// even when the other keys happen to be handled first.
				first := slowCalls.Add(1) == 1
				select {
				case <-othersDone:
					if first {
						return agent.RetryAfter(time.Millisecond, errBoom)
					}
				default:
					return agent.RetryAfter(time.Millisecond, errBoom)
				}
			}
			j.add(m)
			if string(m.Key) != "slow" && others.Add(1) == 4 {
				close(othersDone)
			}
			return nil
		}))...)
	waitCommitted(t, addrs, group, topic, ends(pub))
	r.shutdown(t)
	if got := j.byKey["slow"]; len(got) != 2 || got[0] != "slow#0" || got[1] != "slow#1" {
		t.Fatalf("slow key handled as %v", got)
	}
	// Everything of x and y was handled before slow#0 succeeded.
	if j.calls[4] != "slow#0" {
		t.Fatalf("call order %v: other keys were held back", j.calls)
	}
	if s := r.a.Stats(); s.Retried != int64(slowCalls.Load()-1) || s.Retried < 1 {
		t.Fatalf("retried %d, slow calls %d", s.Retried, slowCalls.Load())
	}
}

func testDeadLetter(t *testing.T, addrs []string) {
	const topic, group = "dl", "dl-g"
	kafkatest.CreateTopic(t, addrs, topic, 2)
	kafkatest.CreateTopic(t, addrs, "dl-dead", 2)
	pub := publish(t, addrs, topic, "t", []string{"k1", "k2"}, 2)
	poison := pub[1] // k2#0
	poison.ev.SetHeader("x-custom", []byte("kept"))
	r := start(t, group, []string{topic}, append(fastOpts(addrs),
		agent.WithDeadLetterTopic(func(t string) string { return t + "-dead" }),
		agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
			if m.ID == poison.ev.ID {
				return agent.DeadLetter(fmt.Errorf("bad amount: %w", errBoom))
			}
			return nil
		}))...)
	waitCommitted(t, addrs, group, topic, ends(pub))
	r.shutdown(t)
	dead := kafkatest.ReadAll(t, addrs, "dl-dead")
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	d := dead[0]
	checkDLQ(t, d, poison, group, agent.ReasonDeadLetter, "1")
	if s := r.a.Stats(); s.DeadLettered != 1 || s.Succeeded != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func checkDLQ(t *testing.T, d *kgo.Record, orig published, group, reason, attempts string) {
	t.Helper()
	if string(d.Key) != string(orig.rec.Key) || string(d.Value) != string(orig.rec.Value) {
		t.Errorf("dead letter key/value %q/%q, want %q/%q", d.Key, d.Value, orig.rec.Key, orig.rec.Value)
	}
	if event.IDOf(d) != orig.ev.ID || event.TypeOf(d) != orig.ev.Type {
		t.Errorf("dead letter lost the envelope headers: %v", d.Headers)
	}
	want := map[string]string{
		agent.HeaderDLQReason:            reason,
		agent.HeaderDLQOriginalTopic:     orig.rec.Topic,
		agent.HeaderDLQOriginalPartition: strconv.Itoa(int(orig.rec.Partition)),
		agent.HeaderDLQOriginalOffset:    strconv.FormatInt(orig.rec.Offset, 10),
		agent.HeaderDLQGroup:             group,
		agent.HeaderDLQAttempts:          attempts,
	}
	for k, v := range want {
		if got := header(d, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if header(d, agent.HeaderDLQError) == "" {
		t.Error("no error text")
	}
	for _, k := range []string{agent.HeaderDLQOriginalTimestamp, agent.HeaderDLQTime} {
		if _, err := time.Parse(time.RFC3339, header(d, k)); err != nil {
			t.Errorf("header %s: %v", k, err)
		}
	}
}

// testExhaustedDLQ: Retry, an unflagged error and a panic all end in the
// dead-letter topic after exactly max attempts.
func testExhaustedDLQ(t *testing.T, addrs []string) {
	const topic, group = "ex", "ex-g"
	kafkatest.CreateTopic(t, addrs, topic, 1)
	pub := publish(t, addrs, topic, "t", []string{"retry", "plain", "panic", "fine"}, 1)
	var mu sync.Mutex
	calls := map[string]int{}
	r := start(t, group, []string{topic}, append(fastOpts(addrs), agent.WithMaxAttempts(3),
		agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
			mu.Lock()
			calls[string(m.Key)]++
			mu.Unlock()
			switch string(m.Key) {
			case "retry":
				return agent.Retry(errBoom)
			case "plain":
				return errBoom
			case "panic":
				panic("oops")
			}
			return nil
		}))...)
	waitCommitted(t, addrs, group, topic, ends(pub))
	r.shutdown(t)
	dead := kafkatest.ReadAll(t, addrs, topic+".dlq")
	if len(dead) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dead))
	}
	byKey := map[string]published{}
	for _, p := range pub {
		byKey[string(p.ev.Key)] = p
	}
	for _, d := range dead {
		checkDLQ(t, d, byKey[string(d.Key)], group, agent.ReasonRetriesExhausted, "3")
		if calls[string(d.Key)] != 3 {
			t.Errorf("%s called %d times", d.Key, calls[string(d.Key)])
		}
	}
	if s := r.a.Stats(); s.Retried != 6 || s.DeadLettered != 3 || s.Succeeded != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func testExhaustedHalt(t *testing.T, addrs []string) {
	const topic, group = "halt", "halt-g"
	kafkatest.CreateTopic(t, addrs, topic, 1)
	pub := publish(t, addrs, topic, "t", []string{"a"}, 5)
	r := start(t, group, []string{topic}, append(fastOpts(addrs), agent.WithMaxAttempts(2),
		agent.WithOnExhausted(agent.OnExhaustedHalt),
		agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
			if string(m.Data) == "a#2" {
				return agent.Retry(errBoom)
			}
			return nil
		}))...)
	err := r.wait(t)
	if !errors.Is(err, agent.ErrRetriesExhausted) || !errors.Is(err, errBoom) {
		t.Fatalf("Run = %v, want ErrRetriesExhausted wrapping the cause", err)
	}
	if got := kafkatest.Committed(t, addrs, group, topic)[0]; got != pub[2].rec.Offset {
		t.Fatalf("committed %d, want %d (the halted event)", got, pub[2].rec.Offset)
	}
	if s := r.a.Stats(); s.Halted != 1 || s.Succeeded != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// testKill: a kill while other handlers are in flight; they finish, the
// commit stays at or below the first unfinished event, Run returns the error.
func testKill(t *testing.T, addrs []string) {
	const topic, group = "kill", "kill-g"
	kafkatest.CreateTopic(t, addrs, topic, 1)
	keys := []string{"a", "b", "c", "d"}
	pub := publish(t, addrs, topic, "t", keys, 10)
	victim := pub[9] // b#2
	release, c2started := make(chan struct{}), make(chan struct{})
	var j journal
	r := start(t, group, []string{topic}, append(fastOpts(addrs), agent.WithConcurrency(4),
		agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
			if m.ID == victim.ev.ID {
				<-c2started
				close(release)
				return agent.Kill(errBoom)
			}
			if string(m.Data) == "c#2" { // in flight when the kill comes
				close(c2started)
				<-release
			}
			j.add(m)
			return nil
		}))...)
	err := r.wait(t)
	if !errors.Is(err, agent.ErrKilled) || !errors.Is(err, errBoom) {
		t.Fatalf("Run = %v, want ErrKilled wrapping the cause", err)
	}
	handled := map[string]bool{}
	for _, c := range j.calls {
		handled[c] = true
	}
	if !handled["c#2"] {
		t.Fatal("in-flight handler c#2 did not finish")
	}
	first := int64(-1) // first unfinished offset
	for _, p := range pub {
		if !handled[string(p.ev.Data)] {
			first = p.rec.Offset
			break
		}
	}
	got := kafkatest.Committed(t, addrs, group, topic)[0]
	if first < 0 || got > first || got > victim.rec.Offset {
		t.Fatalf("committed %d, first unfinished %d, killed at %d", got, first, victim.rec.Offset)
	}
	if r.a.Stats().Killed != 1 {
		t.Fatalf("stats %+v", r.a.Stats())
	}
}

func testMalformed(t *testing.T, addrs []string) {
	const topic, group = "mal", "mal-g"
	kafkatest.CreateTopic(t, addrs, topic, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	bad := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: event.HeaderType, Value: []byte("t")}, {Key: event.HeaderTime, Value: []byte("yesterday")}}}
	if err := cl.ProduceSync(context.Background(), bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	var called atomic.Bool
	r := start(t, group, []string{topic}, append(fastOpts(addrs),
		agent.WithHandler("t", func(context.Context, *agent.Message) error { called.Store(true); return nil }))...)
	waitCommitted(t, addrs, group, topic, map[int32]int64{0: bad.Offset + 1})
	r.shutdown(t)
	dead := kafkatest.ReadAll(t, addrs, topic+".dlq")
	if len(dead) != 1 || header(dead[0], agent.HeaderDLQReason) != agent.ReasonMalformed || called.Load() {
		t.Fatalf("dead letters %v, handler called %v", dead, called.Load())
	}
}
