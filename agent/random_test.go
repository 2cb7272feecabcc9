package agent_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// plan says how each attempt of an event ends.
type plan struct {
	failures int           // attempts that fail (retry, plain error or panic) before the last one
	last     agent.Verdict // the last attempt's verdict: success, warn or dead-letter
}

// TestRandomized: many keys, random failures, retries and dead letters, 8
// handlers in flight. Each key's events finish in produce order, no two
// handlers of one key overlap, every event is called exactly as often as
// its plan says and ends succeeded or dead-lettered as its plan says.
func TestRandomized(t *testing.T) { testRandomized(t, false) }

// TestRandomizedRetryTopic is TestRandomized with retry topics: retries of
// 1ms or more (most of the 1-5ms backoffs) are parked in the retry topic,
// the rest held in memory, and the parked keys' later events follow them.
func TestRandomizedRetryTopic(t *testing.T) { testRandomized(t, true) }

func testRandomized(t *testing.T, retryTopic bool) {
	var opts []agent.Option
	if retryTopic {
		opts = append(opts, agent.WithRetryTopic(time.Millisecond))
	}
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		const topic, group, maxAttempts = "rnd", "rnd-g", 4
		seed := uint64(20261122)
		rng := rand.New(rand.NewPCG(seed, seed))
		t.Logf("seed %d", seed)
		kafkatest.CreateTopic(t, addrs, topic, 4)
		keys := make([]string, 50)
		for i := range keys {
			keys[i] = fmt.Sprintf("key-%02d", i)
		}
		pub := publish(t, addrs, topic, "t", keys, 12)
		plans := map[string]plan{} // by payload
		for _, p := range pub {
			var pl plan
			switch x := rng.IntN(100); {
			case x < 55:
			case x < 80:
				pl.failures = 1 + rng.IntN(maxAttempts-1)
			case x < 88:
				pl.failures = maxAttempts // exhausted: dead-lettered
			case x < 94:
				pl.last = agent.VerdictDeadLetter
			default:
				pl.last = agent.VerdictWarn
			}
			plans[string(p.ev.Data)] = pl
		}

		var mu sync.Mutex
		calls := map[string]int{}
		finished := map[string][]string{} // by key, in finishing order
		running := map[string]bool{}
		var overlap []string
		r := start(t, group, []string{topic}, append(append(fastOpts(addrs), opts...),
			agent.WithConcurrency(8), agent.WithMaxAttempts(maxAttempts), agent.WithWindow(64),
			agent.WithHandler("t", func(_ context.Context, m *agent.Message) error {
				id, key := string(m.Data), string(m.Key)
				mu.Lock()
				if running[key] {
					overlap = append(overlap, id)
				}
				running[key] = true
				calls[id]++
				n := calls[id]
				mu.Unlock()
				pl := plans[id]
				var err error
				if n <= pl.failures {
					switch n % 3 {
					case 0:
						err = agent.Retry(errBoom)
					case 1:
						err = errBoom
					}
				} else {
					switch pl.last {
					case agent.VerdictDeadLetter:
						err = agent.DeadLetter(errBoom)
					case agent.VerdictWarn:
						err = agent.Warn(errBoom)
					}
				}
				mu.Lock()
				running[key] = false
				if n > pl.failures || n == maxAttempts {
					finished[key] = append(finished[key], id)
				}
				mu.Unlock()
				if err == nil && n <= pl.failures && n%3 == 2 {
					panic("planned panic")
				}
				return err
			}))...)
		// Every event ends (with retry topics, the topic's commits reach its
		// end while parked events are still to be handled).
		kafkatest.Eventually(t, 30*time.Second, "every event finished", func() bool {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, f := range finished {
				n += len(f)
			}
			return n == len(pub)
		})
		waitCommitted(t, addrs, group, topic, ends(pub))
		r.shutdown(t)

		mu.Lock()
		defer mu.Unlock()
		if len(overlap) > 0 {
			t.Fatalf("handlers of one key overlapped at %v", overlap)
		}
		wantDead := map[string]bool{}
		var wantRetries int64
		for _, k := range keys {
			var want []string
			for i := range 12 {
				want = append(want, fmt.Sprintf("%s#%d", k, i))
			}
			if fmt.Sprint(finished[k]) != fmt.Sprint(want) {
				t.Errorf("key %s finished in order %v, want %v", k, finished[k], want)
			}
		}
		for id, pl := range plans {
			wantCalls := min(pl.failures+1, maxAttempts)
			if calls[id] != wantCalls {
				t.Errorf("%s called %d times, want %d (plan %+v)", id, calls[id], wantCalls, pl)
			}
			if pl.failures >= maxAttempts || pl.last == agent.VerdictDeadLetter {
				wantDead[id] = true
			}
			wantRetries += int64(wantCalls - 1)
		}
		dead := kafkatest.ReadAll(t, addrs, topic+".dlq")
		gotDead := map[string]bool{}
		for _, d := range dead {
			if gotDead[string(d.Value)] {
				t.Errorf("%s dead-lettered twice", d.Value)
			}
			gotDead[string(d.Value)] = true
		}
		if fmt.Sprint(gotDead) != fmt.Sprint(wantDead) {
			t.Errorf("dead-lettered %d events, want %d", len(gotDead), len(wantDead))
		}
		s := r.a.Stats()
		if s.Retried != wantRetries || s.DeadLettered != int64(len(wantDead)) ||
			s.Succeeded+s.Warned+s.DeadLettered != int64(len(pub)) {
			t.Errorf("stats %+v, want %d retries, %d dead letters, %d events", s, wantRetries, len(wantDead), len(pub))
		}
		if retryTopic && (s.Deferred == 0 || len(kafkatest.ReadAll(t, addrs, topic+"."+group+".retry")) == 0) {
			t.Errorf("stats %+v: nothing went through the retry topic", s)
		}
	})
}
