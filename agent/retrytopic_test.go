package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// handled records, per payload, the calls a handler got: attempt and the
// topic the event was handled from; and successes in order, per key.
type handled struct {
	journal
	mu    sync.Mutex
	calls map[string][]call
}

type call struct {
	attempt int
	topic   string
	at      time.Time
}

func (h *handled) called(m *agent.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls == nil {
		h.calls = map[string][]call{}
	}
	h.calls[string(m.Data)] = append(h.calls[string(m.Data)], call{m.Attempt, m.Record.Topic, time.Now()})
}

func (h *handled) of(payload string) []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls[payload])
}

func (h *handled) succeeded(key string) []string {
	h.journal.mu.Lock()
	defer h.journal.mu.Unlock()
	return slices.Clone(h.byKey[key])
}

func payloads(key string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s#%d", key, i))
	}
	return out
}

// parkFirst runs an agent with retry topics on topic (2 partitions, keys a,
// b, c, 5 events each) whose handler parks a#0 for an hour and succeeds
// otherwise. It returns once the topic's commits reached its end, b and c
// are handled and the retry topic holds a's five events, and checks all of
// that; the agent is still running.
func parkFirst(t *testing.T, addrs []string, topic, group string) (*running, []published, *handled) {
	t.Helper()
	retry := topic + "." + group + ".retry"
	kafkatest.CreateTopic(t, addrs, topic, 2)
	pub := publish(t, addrs, topic, "t", []string{"a", "b", "c"}, 5)
	h := &handled{}
	start := time.Now()
	r := startWithRetryTopic(t, addrs, topic, group, h, func(m *agent.Message) error {
		if string(m.Data) == "a#0" {
			return agent.RetryAfter(time.Hour, errBoom)
		}
		return nil
	})
	// The topic's commits pass a#0 although it is not done: it is parked.
	waitCommitted(t, addrs, group, topic, ends(pub))
	kafkatest.Eventually(t, 30*time.Second, "b and c handled", func() bool { return h.len() == 10 })
	for _, k := range []string{"b", "c"} {
		if got, want := h.succeeded(k), payloads(k, 0, 5); !slices.Equal(got, want) {
			t.Fatalf("key %s succeeded %v, want %v", k, got, want)
		}
		if c := h.of(k + "#0"); len(c) != 1 || c[0].topic != topic {
			t.Fatalf("%s#0 calls %+v, want one from %s", k, c, topic)
		}
	}

	// The retry topic holds a#0 (due in an hour, one attempt made) and, in
	// order behind it in the same partition, a#1..a#4 (deferred, never
	// handled), each naming its original offset.
	var parked []*kgo.Record
	kafkatest.Eventually(t, 30*time.Second, "a's events in the retry topic", func() bool {
		parked = kafkatest.ReadAll(t, addrs, retry)
		return len(parked) == 5
	})
	orig := map[string]*kgo.Record{}
	for _, p := range pub {
		orig[string(p.ev.Data)] = p.rec
	}
	for i, r := range parked {
		want := fmt.Sprintf("a#%d", i)
		if string(r.Value) != want || string(r.Key) != "a" || r.Partition != orig[want].Partition {
			t.Fatalf("retry record %d: %s=%s in partition %d, want %s in partition %d", i, r.Key, r.Value, r.Partition, want, orig[want].Partition)
		}
		if got := header(r, agent.HeaderRetryOriginalOffset); got != strconv.FormatInt(orig[want].Offset, 10) {
			t.Fatalf("%s: %s = %q, want %d", want, agent.HeaderRetryOriginalOffset, got, orig[want].Offset)
		}
		if header(r, "ce_type") != "t" {
			t.Fatalf("%s lost its envelope headers: %v", want, r.Headers)
		}
		attempts, nb := header(r, agent.HeaderRetryAttempts), header(r, agent.HeaderRetryNotBefore)
		if i > 0 {
			if attempts != "0" || nb != "" {
				t.Fatalf("deferred %s: attempts %q, not before %q; want 0 and empty", want, attempts, nb)
			}
			continue
		}
		due, err := time.Parse(time.RFC3339Nano, nb)
		if attempts != "1" || err != nil || due.Before(start.Add(59*time.Minute)) || due.After(time.Now().Add(61*time.Minute)) {
			t.Fatalf("parked a#0: attempts %q, not before %q (%v); want 1 and an hour from now", attempts, nb, err)
		}
	}
	if got := h.succeeded("a"); len(got) != 0 {
		t.Fatalf("a's events handled while a#0 waits: %v", got)
	}
	if c := h.of("a#1"); len(c) != 0 {
		t.Fatalf("a#1 was handed to the handler while deferred: %+v", c)
	}
	kafkatest.Eventually(t, 30*time.Second, "stats", func() bool {
		st := r.a.Stats()
		return st.Deferred == 4 && st.Retried == 1 && st.Succeeded == 10
	})
	return r, pub, h
}

// startWithRetryTopic starts an agent with retry topics (minimum delay 100ms)
// whose handler records every call in h, then returns verdict(m), recording
// successes.
func startWithRetryTopic(t *testing.T, addrs []string, topic, group string, h *handled, verdict func(*agent.Message) error, opts ...agent.Option) *running {
	t.Helper()
	return start(t, group, []string{topic}, append(append(fastOpts(addrs),
		agent.WithRetryTopic(100*time.Millisecond), agent.WithConcurrency(4),
		agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
			h.called(m)
			err := verdict(m)
			if err == nil {
				h.add(m)
			}
			return err
		})), opts...)...)
}

// TestRetryTopicDefersKey: a long retry parks the event in the retry topic;
// the topic's partition moves on and commits past it, other keys are
// handled, and the parked key's later events follow it into the retry topic
// instead of being handled.
func TestRetryTopicDefersKey(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		r, _, _ := parkFirst(t, addrs, "rt", "rt-g")
		r.shutdown(t)
	})
}

// TestRetryTopicResume: a new agent in the group inherits the parked events:
// it reads the retry partition before it handles the topic's partition, so
// events of the parked key produced meanwhile are deferred behind it too,
// and the key's events succeed in produce order when a#0 falls due.
func TestRetryTopicResume(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group = "rr", "rr-g"
		retry := topic + "." + group + ".retry"
		r, pub, _ := parkFirst(t, addrs, topic, group)
		r.shutdown(t)
		pub = append(pub, publishRange(t, addrs, topic, "t", []string{"a", "b"}, 5, 7)...)

		// a#0 is due for the new agent (its clock is two hours on), but its
		// handler holds it until a#5 and a#6 were deferred behind it: they
		// are, though a#0 is the new agent's to finish, because it read the
		// retry partition before it handled any of the topic's events.
		h := &handled{}
		later := func() time.Time { return time.Now().Add(2 * time.Hour) }
		release := make(chan struct{})
		r2 := startWithRetryTopic(t, addrs, topic, group, h, func(m *agent.Message) error {
			if string(m.Data) == "a#0" {
				select {
				case <-release:
				case <-time.After(30 * time.Second):
					return agent.Kill(errBoom)
				}
			}
			return nil
			// A window smaller than the 5 events waiting in the retry
			// partition, and a fetch a batch at a time: reading them back
			// must not depend on handling them.
		}, agent.WithNow(later), agent.WithWindow(2), agent.WithClientOptions(kgo.FetchMaxPartitionBytes(1)))
		kafkatest.Eventually(t, 30*time.Second, "a#5 and a#6 deferred", func() bool { return r2.a.Stats().Deferred == 2 })
		close(release)
		kafkatest.Eventually(t, 30*time.Second, "a's 7 events and b's 2 new ones handled", func() bool { return h.len() == 9 })
		if got, want := h.succeeded("a"), payloads("a", 0, 7); !slices.Equal(got, want) {
			t.Fatalf("key a succeeded in the order %v, want %v", got, want)
		}
		if got, want := h.succeeded("b"), payloads("b", 5, 7); !slices.Equal(got, want) {
			t.Fatalf("key b succeeded %v, want %v (the rest was committed)", got, want)
		}
		if c := h.of("a#0"); len(c) != 1 || c[0].attempt != 2 || c[0].topic != retry {
			t.Fatalf("a#0 calls %+v, want one, attempt 2, from %s", c, retry)
		}
		for _, p := range payloads("a", 1, 7) {
			if c := h.of(p); len(c) != 1 || c[0].attempt != 1 || c[0].topic != retry {
				t.Fatalf("%s calls %+v, want one first attempt from %s", p, c, retry)
			}
		}
		waitCommitted(t, addrs, group, topic, ends(pub))
		waitCommitted(t, addrs, group, retry, map[int32]int64{pub[0].rec.Partition: 7})
		r2.shutdown(t)
	})
}

// TestRetryTopicDue: a parked event is handled from the retry topic once its
// delay has passed (not before), counting its attempts across the move; one
// that is then dead-lettered names its original topic and offset, without
// retry headers.
func TestRetryTopicDue(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group, delay = "rd", "rd-g", 300 * time.Millisecond
		retry := topic + "." + group + ".retry"
		kafkatest.CreateTopic(t, addrs, topic, 2)
		pub := publish(t, addrs, topic, "t", []string{"x", "y"}, 2)
		h := &handled{}
		r := startWithRetryTopic(t, addrs, topic, group, h, func(m *agent.Message) error {
			switch {
			case m.Attempt > 1 && string(m.Data) == "y#0":
				return agent.DeadLetter(errBoom)
			case m.Attempt == 1 && (string(m.Data) == "x#0" || string(m.Data) == "y#0"):
				return agent.RetryAfter(delay, errBoom)
			}
			return nil
		})
		kafkatest.Eventually(t, 30*time.Second, "x's events and y#1 handled", func() bool { return h.len() == 3 })
		if got, want := h.succeeded("x"), payloads("x", 0, 2); !slices.Equal(got, want) {
			t.Fatalf("key x succeeded %v, want %v", got, want)
		}
		c := h.of("x#0")
		if len(c) != 2 || c[0].topic != topic || c[1].topic != retry || c[1].attempt != 2 {
			t.Fatalf("x#0 calls %+v, want attempt 1 from %s, attempt 2 from %s", c, topic, retry)
		}
		// Not before its delay (its not-before time has millisecond precision).
		if gap := c[1].at.Sub(c[0].at); gap < delay-time.Millisecond {
			t.Fatalf("x#0 handled again after %v, before its %v delay", gap, delay)
		}
		if got := h.succeeded("y"); !slices.Equal(got, []string{"y#1"}) {
			t.Fatalf("key y succeeded %v, want [y#1] after y#0 was dead-lettered", got)
		}

		var dl []*kgo.Record
		kafkatest.Eventually(t, 30*time.Second, "y#0 dead-lettered", func() bool {
			dl = kafkatest.ReadAll(t, addrs, topic+".dlq")
			return len(dl) == 1
		})
		var y0 *kgo.Record
		for _, p := range pub {
			if string(p.ev.Data) == "y#0" {
				y0 = p.rec
			}
		}
		d := dl[0]
		if string(d.Value) != "y#0" || header(d, agent.HeaderDLQOriginalTopic) != topic ||
			header(d, agent.HeaderDLQOriginalOffset) != strconv.FormatInt(y0.Offset, 10) ||
			header(d, agent.HeaderDLQOriginalPartition) != strconv.Itoa(int(y0.Partition)) ||
			header(d, agent.HeaderDLQAttempts) != "2" || header(d, agent.HeaderDLQReason) != agent.ReasonDeadLetter {
			t.Fatalf("dead letter of y#0: %s %v", d.Value, d.Headers)
		}
		for _, hd := range d.Headers {
			if hd.Key == agent.HeaderRetryNotBefore || hd.Key == agent.HeaderRetryAttempts || hd.Key == agent.HeaderRetryOriginalOffset {
				t.Fatalf("dead letter keeps retry header %s", hd.Key)
			}
		}
		waitCommitted(t, addrs, group, topic, ends(pub))
		r.shutdown(t)
	})
}

// TestRetryTopicRebalance: with retry topics, a second agent joins the group
// mid-stream and leaves again while every key's events of rounds 3, 13, 23
// and 33 are parked once. Every event succeeds, the first successes of each
// key's events come in produce order (redeliveries after a rebalance repeat a
// suffix, as without retry topics), and the commits of the topic and of its
// retry topic reach their ends.
func TestRetryTopicRebalance(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group, rounds, keys = "rb", "rb-g", 40, 40
		retry := topic + "." + group + ".retry"
		kafkatest.CreateTopic(t, addrs, topic, 4)
		var mu sync.Mutex
		first := map[string][]int{} // key -> rounds in first-success order
		done := map[string]bool{}
		var succeeded atomic.Int64
		handler := agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
			var round int
			fmt.Sscanf(string(m.Data)[len(m.Key)+1:], "%d", &round)
			if round%10 == 3 && m.Attempt == 1 {
				return agent.RetryAfter(50*time.Millisecond, errBoom)
			}
			mu.Lock()
			defer mu.Unlock()
			if !done[string(m.Data)] {
				done[string(m.Data)] = true
				first[string(m.Key)] = append(first[string(m.Key)], round)
				succeeded.Add(1)
			}
			return nil
		})
		opts := append(fastOpts(addrs), agent.WithRetryTopic(20*time.Millisecond), agent.WithConcurrency(8), agent.WithWindow(32), handler)

		var ks []string
		for k := range keys {
			ks = append(ks, fmt.Sprintf("k%d", k))
		}
		var pub []published
		publishRounds := func(from, to int) {
			for r := from; r < to; r++ {
				pub = append(pub, publishRange(t, addrs, topic, "t", ks, r, r+1)...)
			}
		}
		// Rounds 0-14 before a starts, 15-29 once b has its share of the
		// partitions, 30-39 after b has left.
		publishRounds(0, 15)
		a := start(t, group, []string{topic}, opts...)
		kafkatest.Eventually(t, 30*time.Second, "first agent at work", func() bool { return succeeded.Load() >= 300 })
		b := start(t, group, []string{topic}, opts...)
		kafkatest.Eventually(t, 30*time.Second, "both agents assigned partition pairs", func() bool { return membersAssigned(t, addrs, group) == 2 })
		publishRounds(15, 30)
		kafkatest.Eventually(t, 30*time.Second, "second agent at work", func() bool { return b.a.Stats().Succeeded > 0 })
		b.shutdown(t)
		publishRounds(30, rounds)
		kafkatest.Eventually(t, 30*time.Second, "every event succeeded", func() bool { return succeeded.Load() == rounds*keys })
		waitCommitted(t, addrs, group, topic, ends(pub))
		retryEnds := map[int32]int64{}
		for _, r := range kafkatest.ReadAll(t, addrs, retry) {
			retryEnds[r.Partition] = max(retryEnds[r.Partition], r.Offset+1)
		}
		waitCommitted(t, addrs, group, retry, retryEnds)
		a.shutdown(t)

		mu.Lock()
		defer mu.Unlock()
		want := make([]int, rounds)
		for r := range want {
			want[r] = r
		}
		for _, k := range ks {
			if !slices.Equal(first[k], want) {
				t.Fatalf("key %s: first successes in the order %v", k, first[k])
			}
		}
		if len(retryEnds) == 0 || a.a.Stats().Deferred+b.a.Stats().Deferred == 0 {
			t.Fatalf("nothing deferred through the retry topic (retry ends %v)", retryEnds)
		}
		t.Logf("a: %+v; b: %+v", a.a.Stats(), b.a.Stats())
	})
}

// TestRetryTopicSetup: Run creates a missing retry topic with its topic's
// partition count, grows one that has fewer, and fails with a clear error
// when the topic does not exist or the retry topic has more partitions.
func TestRetryTopicSetup(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		// partitions returns topic's partition count, or -1 if it is missing.
		partitions := func(topic string) int {
			adm, closeAdm := newAdmin(t, addrs)
			defer closeAdm()
			tds, err := adm.ListTopics(context.Background(), topic)
			if err != nil {
				t.Fatal(err)
			}
			if td, ok := tds[topic]; ok && td.Err == nil {
				return len(td.Partitions)
			}
			return -1
		}
		// runUntil runs an agent until its retry topic has want partitions.
		runUntil := func(group, topic string, want int) {
			a, err := agent.New(group, []string{topic}, append(fastOpts(addrs), agent.WithRetryTopic(time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			retry := topic + "." + group + ".retry"
			kafkatest.Eventually(t, 30*time.Second, fmt.Sprintf("%s with %d partitions", retry, want), func() bool {
				return partitions(retry) == want
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
		}

		kafkatest.CreateTopic(t, addrs, "st", 3)
		runUntil("g1", "st", 3) // created
		kafkatest.CreateTopic(t, addrs, "st.g2.retry", 1)
		runUntil("g2", "st", 3) // grown

		kafkatest.CreateTopic(t, addrs, "st.g3.retry", 5)
		a, _ := agent.New("g3", []string{"st"}, append(fastOpts(addrs), agent.WithRetryTopic(time.Second))...)
		if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "more than the 3") {
			t.Fatalf("Run with a retry topic of 5 partitions for 3: %v", err)
		}
		a, _ = agent.New("g4", []string{"absent"}, append(fastOpts(addrs), agent.WithRetryTopic(time.Second))...)
		if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), `topic "absent" must exist`) {
			t.Fatalf("Run with retry topics on a missing topic: %v", err)
		}
	})
}

// membersAssigned returns how many members of group have partitions of
// both a topic and its retry topic, the same partition numbers of each.
func membersAssigned(t *testing.T, addrs []string, group string) int {
	t.Helper()
	adm, closeAdm := newAdmin(t, addrs)
	defer closeAdm()
	gs, err := adm.DescribeGroups(context.Background(), group)
	if err != nil {
		return 0
	}
	n := 0
	for _, m := range gs[group].Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		parts := map[string][]int32{}
		for _, tp := range ca.Topics {
			parts[tp.Topic] = slices.Sorted(slices.Values(tp.Partitions))
		}
		for topic, ps := range parts {
			if r, ok := parts[topic+"."+group+".retry"]; ok && len(ps) > 0 && slices.Equal(ps, r) {
				n++
				break
			}
		}
	}
	return n
}

// logCount counts log records whose message is msg.
type logCount struct {
	msg string
	n   atomic.Int64
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCount) Handle(_ context.Context, r slog.Record) error {
	if r.Message == l.msg {
		l.n.Add(1)
	}
	return nil
}
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCount) WithGroup(string) slog.Handler      { return l }

// TestRetryTopicPublishFails: while the retry topic refuses the parked
// event (its max.message.bytes is too small), the event stays unfinished:
// the topic's commit does not pass it, and the publish is tried again
// without calling the handler again. Once the retry topic takes it, the
// commit moves on.
func TestRetryTopicPublishFails(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group = "pf", "pf-g"
		retry := topic + "." + group + ".retry"
		kafkatest.CreateTopic(t, addrs, topic, 1)
		adm, closeAdm := newAdmin(t, addrs)
		defer closeAdm()
		small, large := "100", "1048588"
		if resp, err := adm.CreateTopic(context.Background(), 1, -1, map[string]*string{"max.message.bytes": &small}, retry); err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", retry, err, resp.Err)
		}
		pub := publish(t, addrs, topic, "t", []string{"k"}, 1)

		var calls atomic.Int64
		failures := &logCount{msg: "agent: retry topic publish failed, will retry"}
		r := start(t, group, []string{topic}, append(fastOpts(addrs), agent.WithRetryTopic(time.Millisecond),
			agent.WithLogger(slog.New(failures)),
			agent.WithHandler("t", func(context.Context, *agent.Message) error {
				calls.Add(1)
				return agent.RetryAfter(time.Hour, errBoom)
			}))...)
		kafkatest.Eventually(t, 30*time.Second, "the park publish failing repeatedly", func() bool { return failures.n.Load() >= 3 })
		if n := calls.Load(); n != 1 {
			t.Fatalf("handler called %d times while the publish failed, want 1", n)
		}
		if got := kafkatest.Committed(t, addrs, group, topic)[0]; got > 0 {
			t.Fatalf("committed %d past the event that is not parked yet", got)
		}

		if resps, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &large}}, retry); err != nil || resps[0].Err != nil {
			t.Fatalf("alter %s: %v %v", retry, err, resps)
		}
		waitCommitted(t, addrs, group, topic, ends(pub))
		if parked := kafkatest.ReadAll(t, addrs, retry); len(parked) != 1 || header(parked[0], agent.HeaderRetryAttempts) != "1" {
			t.Fatalf("retry topic holds %d records, want the one event after one attempt", len(parked))
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("handler called %d times, want 1", n)
		}
		r.shutdown(t)
	})
}

// TestRetryTopicReparks: an event that fails again in the retry topic is
// parked again, its attempts and due time durable, when nothing of its key
// waits behind it there; when something does, it is retried in memory
// (parking it again would put it behind them). Either way the key's order
// holds.
func TestRetryTopicReparks(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group, delay = "rp", "rp-g", 300 * time.Millisecond
		retry := topic + "." + group + ".retry"
		kafkatest.CreateTopic(t, addrs, topic, 1)
		pub := append(publish(t, addrs, topic, "t", []string{"z"}, 1), publish(t, addrs, topic, "t", []string{"w"}, 2)...)
		h := &handled{}
		r := startWithRetryTopic(t, addrs, topic, group, h, func(m *agent.Message) error {
			if (string(m.Data) == "z#0" || string(m.Data) == "w#0") && m.Attempt <= 2 {
				return agent.RetryAfter(delay, errBoom)
			}
			return nil
		})
		kafkatest.Eventually(t, 30*time.Second, "z#0, w#0 and w#1 handled", func() bool { return h.len() == 3 })
		if got := h.succeeded("w"); !slices.Equal(got, []string{"w#0", "w#1"}) {
			t.Fatalf("key w succeeded %v, want [w#0 w#1]", got)
		}
		for _, p := range []string{"z#0", "w#0"} {
			c := h.of(p)
			if len(c) != 3 || c[0].topic != topic || c[1].topic != retry || c[2].topic != retry || c[2].attempt != 3 {
				t.Fatalf("%s calls %+v, want 3: from %s, then twice from %s, the last attempt 3", p, c, topic, retry)
			}
		}
		// z#0 was parked twice (attempts 1 and 2); w#0 once, because w#1
		// was waiting behind it when it failed again.
		var got []string
		for _, rec := range kafkatest.ReadAll(t, addrs, retry) {
			if want := strconv.FormatInt(pub[0].rec.Offset, 10); string(rec.Value) == "z#0" && header(rec, agent.HeaderRetryOriginalOffset) != want {
				t.Fatalf("re-parked z#0 names original offset %s, want %s", header(rec, agent.HeaderRetryOriginalOffset), want)
			}
			got = append(got, string(rec.Value)+"/"+header(rec, agent.HeaderRetryAttempts))
		}
		slices.Sort(got)
		if want := []string{"w#0/1", "w#1/0", "z#0/1", "z#0/2"}; !slices.Equal(got, want) {
			t.Fatalf("retry topic holds %v, want %v", got, want)
		}
		waitCommitted(t, addrs, group, retry, map[int32]int64{0: 4})
		r.shutdown(t)
	})
}

// TestRetryTopicReparkFails: when parking an event again from the retry
// topic fails (here the retry topic's max.message.bytes is lowered by the
// handler just before), the retry is held in memory instead, and the event
// still succeeds on its next attempt, once.
func TestRetryTopicReparkFails(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group = "rf", "rf-g"
		retry := topic + "." + group + ".retry"
		kafkatest.CreateTopic(t, addrs, topic, 1)
		publish(t, addrs, topic, "t", []string{"z"}, 1)
		adm, closeAdm := newAdmin(t, addrs)
		defer closeAdm()
		small := "100"
		failures := &logCount{msg: "agent: retry topic publish failed, retrying in memory"}
		h := &handled{}
		r := startWithRetryTopic(t, addrs, topic, group, h, func(m *agent.Message) error {
			switch m.Attempt {
			case 1:
				return agent.RetryAfter(200*time.Millisecond, errBoom)
			case 2:
				if resps, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &small}}, retry); err != nil || resps[0].Err != nil {
					t.Errorf("alter %s: %v %v", retry, err, resps)
				}
				return agent.RetryAfter(200*time.Millisecond, errBoom)
			}
			return nil
		}, agent.WithLogger(slog.New(failures)))
		kafkatest.Eventually(t, 30*time.Second, "z#0 handled", func() bool { return h.len() == 1 })
		c := h.of("z#0")
		if len(c) != 3 || c[2].attempt != 3 || c[2].topic != retry {
			t.Fatalf("z#0 calls %+v, want attempts 1-3, the last from %s", c, retry)
		}
		if failures.n.Load() != 1 {
			t.Fatalf("%d failed re-parks logged, want 1", failures.n.Load())
		}
		if parked := kafkatest.ReadAll(t, addrs, retry); len(parked) != 1 {
			t.Fatalf("retry topic holds %d records, want only the first park", len(parked))
		}
		waitCommitted(t, addrs, group, retry, map[int32]int64{0: 1})
		r.shutdown(t)
	})
}

// newAdmin returns an admin client for the cluster at addrs and the
// function that closes it.
func newAdmin(t *testing.T, addrs []string) (*kadm.Client, func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	return kadm.NewClient(cl), cl.Close
}
