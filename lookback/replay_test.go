package lookback_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

func postJSON(t testing.TB, u string, body any, status int, v any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		var p map[string]any
		json.NewDecoder(resp.Body).Decode(&p)
		t.Fatalf("POST %s: %d %v, want %d", u, resp.StatusCode, p, status)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

// archiveN produces n CloudEvents to topic over keys k-0..k-(keys-1) and
// waits until the archive holds want events.
func archiveN(t *testing.T, addrs []string, st lookback.Store, topic string, n, keys int, want int64) {
	t.Helper()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, ceRec(t, topic, fmt.Sprintf("k-%d", i%keys), "item.added", fmt.Sprintf("c-%d", i%keys), map[string]int{"seq": i}))
	}
	produce(t, addrs, rs...)
	waitEvents(t, st, want)
}

func waitReplay(t *testing.T, base, id string) lookback.ReplayState {
	t.Helper()
	var st lookback.ReplayState
	kafkatest.Eventually(t, 60*time.Second, "replay "+id+" to finish", func() bool {
		getJSON(t, base+"/api/lookback/replays/"+id, http.StatusOK, &st)
		return st.Status != "running"
	})
	if st.Status != "done" {
		t.Fatalf("replay %s: %+v", id, st)
	}
	return st
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func replayedOffset(t *testing.T, r *kgo.Record) int64 {
	of := header(r, lookback.HeaderReplayOf)
	o, err := strconv.ParseInt(of[strings.LastIndexByte(of, '/')+1:], 10, 64)
	if err != nil {
		t.Fatalf("spool_replay_of %q", of)
	}
	return o
}

// A dry run counts and previews and produces nothing; a replay into a
// topic keeps every key's order, carries the replay headers, and honours
// its rate.
func TestReplayToTopic(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "src", 3)
		kafkatest.CreateTopic(t, addrs, "dst", 2)
		svc, st := startService(t, addrs, func(c *lookback.Config) { c.Exclude = []string{"^dst$"} })
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		archiveN(t, addrs, st, "src", 60, 6, 60)

		var dry lookback.ReplayState
		postJSON(t, srv.URL+"/api/lookback/replays", lookback.ReplaySpec{Filter: lookback.Filter{Topic: "src"}, ToTopic: "dst", DryRun: true}, http.StatusOK, &dry)
		if dry.Status != "done" || dry.Total != 60 || dry.ByTopic["src"] != 60 || len(dry.Preview) != 10 || dry.Preview[0].Topic != "src" {
			t.Fatalf("dry run: %+v", dry)
		}
		if rs := kafkatest.ReadAll(t, addrs, "dst"); len(rs) != 0 {
			t.Fatalf("dry run produced %d records", len(rs))
		}

		start := time.Now()
		var rp lookback.ReplayState
		postJSON(t, srv.URL+"/api/lookback/replays", lookback.ReplaySpec{Filter: lookback.Filter{Topic: "src"}, ToTopic: "dst", Rate: 100}, http.StatusAccepted, &rp)
		done := waitReplay(t, srv.URL, rp.ID)
		if took := time.Since(start); took < 540*time.Millisecond {
			t.Fatalf("60 events at 100/s took %v, want at least 0.59s", took)
		}
		if done.Done != 60 || done.Total != 60 {
			t.Fatalf("replay: %+v", done)
		}
		rs := kafkatest.ReadAll(t, addrs, "dst")
		if len(rs) != 60 {
			t.Fatalf("dst has %d records, want 60", len(rs))
		}
		last := map[string]int64{}
		for _, r := range rs {
			if header(r, lookback.HeaderReplayID) != rp.ID || header(r, "ce_type") != "item.added" {
				t.Fatalf("replayed record headers: %v", r.Headers)
			}
			o := replayedOffset(t, r)
			k := string(r.Key)
			if prev, ok := last[k]; ok && o <= prev {
				t.Fatalf("key %s: original offset %d after %d: order lost", k, o, prev)
			}
			last[k] = o
		}
		if len(last) != 6 {
			t.Fatalf("%d keys replayed, want 6", len(last))
		}

		// Bad requests.
		for _, bad := range []lookback.ReplaySpec{
			{ToTopic: "a", ToGroup: "b"},
			{ToTopic: "bad topic"},
			{Filter: lookback.Filter{From: "yesterday"}},
			{Rate: -1},
		} {
			postJSON(t, srv.URL+"/api/lookback/replays", bad, http.StatusBadRequest, nil)
		}
		var p struct{ Detail string }
		getJSON(t, srv.URL+"/api/lookback/replays/nope", http.StatusNotFound, &p)
	})
}

// A replay stopped mid-way (the service closed) resumes from its
// checkpoint when the service starts again: every event is replayed, and
// at most the page in flight at the stop is sent twice.
func TestReplayResume(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "src", 2)
		kafkatest.CreateTopic(t, addrs, "dst", 1)
		st, err := lookback.OpenSQLite(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		cfg := func(c *lookback.Config) { c.Exclude = []string{"^dst$"}; c.ReplayCheckpoint = 500 }
		svc := startWith(t, addrs, st, cfg)
		archiveN(t, addrs, st, "src", 1200, 10, 1200)
		srv := httptest.NewServer(svc.Handler())
		var rp lookback.ReplayState
		postJSON(t, srv.URL+"/api/lookback/replays", lookback.ReplaySpec{Filter: lookback.Filter{Topic: "src"}, ToTopic: "dst", Rate: 1500}, http.StatusAccepted, &rp)
		kafkatest.Eventually(t, 30*time.Second, "the first checkpoint", func() bool {
			s, err := st.Replay(context.Background(), rp.ID)
			return err == nil && s.Done >= 500
		})
		svc.Close()
		srv.Close()
		s, _ := st.Replay(context.Background(), rp.ID)
		if s.Status != "running" || s.Done >= 1200 {
			t.Fatalf("after the stop: %+v", s)
		}

		svc = startWith(t, addrs, st, cfg)
		srv = httptest.NewServer(svc.Handler())
		defer srv.Close()
		done := waitReplay(t, srv.URL, rp.ID)
		if done.Done != 1200 {
			t.Fatalf("resumed replay: %+v", done)
		}
		rs := kafkatest.ReadAll(t, addrs, "dst")
		seen := map[string]bool{}
		for _, r := range rs {
			seen[header(r, lookback.HeaderReplayOf)] = true
		}
		if len(seen) != 1200 || len(rs) > 1200+500 {
			t.Fatalf("dst: %d records, %d distinct originals; want all 1200 with at most one page again", len(rs), len(seen))
		}
	})
}

// A replay to one group reaches only that group's agents, with the
// original topic and the replay id on the message.
func TestReplayToGroup(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "src", 2)
		for _, g := range []string{"ga", "gb"} {
			kafkatest.CreateTopic(t, addrs, agent.ReplayTopic(g), 1)
		}
		svc, st := startService(t, addrs, nil)
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()

		var mu sync.Mutex
		live := map[string]int{}
		replayed := map[string][]*agent.Message{}
		handler := func(group string) agent.Handler {
			return func(_ context.Context, m *agent.Message) error {
				mu.Lock()
				defer mu.Unlock()
				if m.ReplayID != "" {
					c := *m
					replayed[group] = append(replayed[group], &c)
				} else {
					live[group]++
				}
				return nil
			}
		}
		for _, g := range []string{"ga", "gb"} {
			runAgent(t, g, []string{"src"}, append(agentOpts(addrs), agent.WithReplay(), agent.WithHandler("item.added", handler(g)))...)
		}
		archiveN(t, addrs, st, "src", 30, 3, 30)
		kafkatest.Eventually(t, 30*time.Second, "both groups to handle the live events", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return live["ga"] == 30 && live["gb"] == 30
		})
		var rp lookback.ReplayState
		postJSON(t, srv.URL+"/api/lookback/replays", lookback.ReplaySpec{Filter: lookback.Filter{Key: "k-1"}, ToGroup: "ga"}, http.StatusAccepted, &rp)
		waitReplay(t, srv.URL, rp.ID)
		kafkatest.Eventually(t, 30*time.Second, "ga to handle the replay", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(replayed["ga"]) == 10
		})
		mu.Lock()
		defer mu.Unlock()
		var prev int64 = -1
		for _, m := range replayed["ga"] {
			if m.ReplayID != rp.ID || m.Record.Topic != "src" || string(m.Key) != "k-1" || m.Record.Offset <= prev {
				t.Fatalf("replayed message: id %q topic %s key %s offset %d after %d", m.ReplayID, m.Record.Topic, m.Key, m.Record.Offset, prev)
			}
			prev = m.Record.Offset
		}
		if len(replayed["gb"]) != 0 || live["ga"] != 30 || live["gb"] != 30 {
			t.Fatalf("gb saw %d replayed events; live ga %d gb %d", len(replayed["gb"]), live["ga"], live["gb"])
		}
	})
}
