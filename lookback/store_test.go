package lookback

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/pgtest"
)

// The conformance test every Store passes: the embedded SQLite store here,
// PostgreSQL in pgstore_test.go.

func TestSQLiteConformance(t *testing.T) {
	RunConformance(t, func(t *testing.T) Store {
		s, err := OpenSQLite(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPebbleConformance(t *testing.T) {
	RunConformance(t, func(t *testing.T) Store {
		s, err := OpenPebble(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPostgresConformance(t *testing.T) {
	dsn := pgtest.Start(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	n := 0
	RunConformance(t, func(t *testing.T) Store {
		// One server, a fresh schema per subtest.
		n++
		schema := fmt.Sprintf("conformance_%d", n)
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatal(err)
		}
		s, err := OpenPostgres(context.Background(), dsn+" search_path="+schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ceRecord(topic string, p int32, off int64, key, typ, corr string, ts time.Time, value string) Record {
	hs := []Header{
		{"ce_specversion", []byte("1.0")},
		{"ce_id", []byte(fmt.Sprintf("id-%s-%d-%d", topic, p, off))},
		{"ce_type", []byte(typ)},
		{"ce_source", []byte("/" + topic)},
		{"content-type", []byte("application/json")},
	}
	if corr != "" {
		hs = append(hs, Header{"correlation_id", []byte(corr)})
	}
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	return Record{Topic: topic, Partition: p, Offset: off, Timestamp: ts, Key: k, Headers: hs, Value: []byte(value)}
}

// RunConformance runs the Store conformance suite on stores from open.
func RunConformance(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		rs := []Record{
			ceRecord("orders", 0, 0, "c-1", "order.placed", "flow-1", t0, `{"data":{"customer":{"id":"c-1"},"total":42}}`),
			// Not a CloudEvent: no headers, no key, a tombstone.
			{Topic: "raw", Partition: 3, Offset: 7, Timestamp: t0.Add(time.Second)},
			// Binary key and value, an empty header value.
			{Topic: "raw", Partition: 3, Offset: 8, Timestamp: t0.Add(2 * time.Second), Key: []byte{0, 1, 2},
				Headers: []Header{{"x", nil}, {"x", []byte("second")}}, Value: []byte{0xff, 0}},
		}
		if err := s.Append(ctx, rs); err != nil {
			t.Fatal(err)
		}
		e, err := s.Get(ctx, "orders", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != "id-orders-0-0" || e.Type != "order.placed" || e.Source != "/orders" || e.CorrelationID != "flow-1" ||
			string(e.Key) != "c-1" || !e.Timestamp.Equal(t0) || string(e.Value) != string(rs[0].Value) || len(e.Headers) != 6 {
			t.Fatalf("orders/0/0: %+v", e)
		}
		e, err = s.Get(ctx, "raw", 3, 7)
		if err != nil {
			t.Fatal(err)
		}
		if e.Key != nil || e.Value != nil || len(e.Headers) != 0 || e.ID != "" {
			t.Fatalf("raw/3/7: key %q value %q headers %v", e.Key, e.Value, e.Headers)
		}
		e, err = s.Get(ctx, "raw", 3, 8)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.Key, []byte{0, 1, 2}) || !bytes.Equal(e.Value, []byte{0xff, 0}) || len(e.Headers) != 2 ||
			e.Headers[0].Key != "x" || len(e.Headers[0].Value) != 0 || string(e.Headers[1].Value) != "second" {
			t.Fatalf("raw/3/8: %+v", e)
		}
		if _, err := s.Get(ctx, "raw", 3, 9); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing event: %v, want ErrNotFound", err)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		s := open(t)
		var rs []Record
		for i := range 50 {
			rs = append(rs, ceRecord("t", 0, int64(i), "k", "x", "", t0.Add(time.Duration(i)*time.Millisecond), "v"))
		}
		for range 3 {
			if err := s.Append(ctx, rs); err != nil {
				t.Fatal(err)
			}
		}
		// An overlapping redelivery.
		more := append(rs[40:], ceRecord("t", 0, 50, "k", "x", "", t0, "v"))
		if err := s.Append(ctx, more); err != nil {
			t.Fatal(err)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Events != 51 {
			t.Fatalf("stats after redeliveries: %d events, want 51", st.Events)
		}
		p, err := s.Search(ctx, Query{Topic: "t", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != 51 {
			t.Fatalf("search: %d events, want 51", len(p.Events))
		}
	})

	t.Run("Search", func(t *testing.T) {
		s := open(t)
		var rs []Record
		for i := range 300 {
			topic := []string{"orders", "payments", "shipping"}[i%3]
			typ := []string{"order.placed", "payment.completed", "shipment.sent"}[i%3]
			rs = append(rs, ceRecord(topic, int32(i%2), int64(i), fmt.Sprintf("c-%d", i%10), typ,
				fmt.Sprintf("flow-%d", i/3), t0.Add(time.Duration(i)*time.Second),
				fmt.Sprintf(`{"data":{"customer":{"id":"c-%d"},"n":%d},"note":"item %d"}`, i%10, i, i)))
		}
		if err := s.Append(ctx, rs[:150]); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, rs[150:]); err != nil {
			t.Fatal(err)
		}
		count := func(q Query) []*Event {
			t.Helper()
			var all []*Event
			for {
				p, err := s.Search(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, p.Events...)
				if p.Next == "" {
					return all
				}
				q.Cursor = p.Next
			}
		}
		for _, c := range []struct {
			name string
			q    Query
			want int
		}{
			{"all", Query{}, 300},
			{"topic", Query{Topic: "orders"}, 100},
			{"key", Query{Key: []byte("c-3"), HasKey: true}, 30},
			{"type", Query{Type: "payment.completed"}, 100},
			{"id", Query{ID: "id-shipping-1-5"}, 1},
			{"source", Query{Source: "/payments"}, 100},
			{"correlation", Query{CorrelationID: "flow-7"}, 3},
			{"range", Query{From: t0.Add(10 * time.Second), To: t0.Add(20 * time.Second)}, 10},
			{"combined", Query{Topic: "orders", Key: []byte("c-3"), HasKey: true, From: t0.Add(100 * time.Second)}, 6},
			{"contains", Query{Contains: `"item 12"`}, 1},
			{"where", Query{Where: &PathEq{Path: []string{"data", "customer", "id"}, Value: "c-4"}}, 30},
			{"where number", Query{Where: &PathEq{Path: []string{"data", "n"}, Value: "77"}}, 1},
			{"where no match", Query{Where: &PathEq{Path: []string{"data", "missing"}, Value: "x"}}, 0},
			{"small pages", Query{Topic: "payments", Limit: 7}, 100},
			{"small pages filtered", Query{Contains: `"c-1"}`, Limit: 3}, 30},
			{"none", Query{Type: "nope"}, 0},
		} {
			for _, oldest := range []bool{false, true} {
				q := c.q
				q.Oldest = oldest
				evs := count(q)
				if len(evs) != c.want {
					t.Fatalf("%s (oldest %v): %d events, want %d", c.name, oldest, len(evs), c.want)
				}
				seen := map[int64]bool{}
				for i, e := range evs {
					if seen[e.Offset] {
						t.Fatalf("%s: offset %d twice", c.name, e.Offset)
					}
					seen[e.Offset] = true
					if i > 0 && oldest != evs[i-1].Timestamp.Before(e.Timestamp) {
						t.Fatalf("%s (oldest %v): out of order at %d", c.name, oldest, i)
					}
				}
			}
		}
		p, err := s.Search(ctx, Query{Limit: 1})
		if err != nil || len(p.Events) != 1 || p.Events[0].Offset != 299 || p.Next == "" {
			t.Fatalf("newest first: %+v %v", p, err)
		}
		// A payload filter that matches nothing stops after MaxScan with a
		// cursor to go on from.
		p, err = s.Search(ctx, Query{Contains: "nothing has this", MaxScan: 100})
		if err != nil || len(p.Events) != 0 || p.Scanned != 100 || p.Next == "" {
			t.Fatalf("bounded scan: %d events, scanned %d, next %q, %v", len(p.Events), p.Scanned, p.Next, err)
		}
		for _, bad := range []Query{{Cursor: "!!"}, {Cursor: "AAAA"}, {Limit: 1001}, {From: t0, To: t0}} {
			if _, err := s.Search(ctx, bad); !errors.Is(err, ErrBadQuery) {
				t.Fatalf("bad query %+v: %v, want ErrBadQuery", bad, err)
			}
		}
	})

	t.Run("Erase", func(t *testing.T) {
		s := open(t)
		var rs []Record
		for i := range 100 {
			rs = append(rs, ceRecord("users", 0, int64(i), fmt.Sprintf("u-%d", i%4), "user.updated", "", t0.Add(time.Duration(i)*time.Second),
				fmt.Sprintf(`{"email":"user%d@example.com","secret":"s-%d"}`, i%4, i%4)))
		}
		rs = append(rs, ceRecord("other", 0, 0, "u-1", "x", "", t0, `{"secret":"s-1"}`))
		if err := s.Append(ctx, rs); err != nil {
			t.Fatal(err)
		}
		n, err := s.Erase(ctx, []byte("u-1"), "users")
		if err != nil || n != 25 {
			t.Fatalf("erase: %d, %v; want 25", n, err)
		}
		p, err := s.Search(ctx, Query{Contains: "s-1", Limit: 1000})
		if err != nil || len(p.Events) != 1 || p.Events[0].Topic != "other" {
			t.Fatalf("after erase in topic users, events with the secret: %+v %v", p.Events, err)
		}
		// The rest of the rewritten block still reads back whole.
		for _, off := range []int64{0, 2, 3, 98} {
			e, err := s.Get(ctx, "users", 0, off)
			if err != nil || e.Value == nil || !bytes.Contains(e.Value, []byte(fmt.Sprintf("user%d@", off%4))) {
				t.Fatalf("users/0/%d after erase: %+v %v", off, e, err)
			}
		}
		if _, err := s.Get(ctx, "users", 0, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("erased event: %v", err)
		}
		if n, err := s.Erase(ctx, []byte("u-1"), ""); err != nil || n != 1 {
			t.Fatalf("erase in every topic: %d %v", n, err)
		}
		st, _ := s.Stats(ctx)
		if st.Events != 75 {
			t.Fatalf("after erasing: %d events, want 75", st.Events)
		}
	})

	t.Run("Retain", func(t *testing.T) {
		s := open(t)
		// Ten appends, each its own block, one hour apart.
		for b := range 10 {
			var rs []Record
			for i := range 20 {
				off := int64(b*20 + i)
				rs = append(rs, ceRecord("t", 0, off, "k", "x", "", t0.Add(time.Duration(b)*time.Hour), fmt.Sprintf(`{"n":%d,"pad":"%x"}`, off, off*7919)))
			}
			if err := s.Append(ctx, rs); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.Retain(ctx, t0.Add(3*time.Hour), 0)
		if err != nil || n != 60 {
			t.Fatalf("retain by age: %d %v, want 60", n, err)
		}
		st, _ := s.Stats(ctx)
		if st.Events != 140 || !st.Oldest.Equal(t0.Add(3*time.Hour)) {
			t.Fatalf("after age retention: %+v", st)
		}
		// Size: keep about half of what is left.
		full, err := s.Retain(ctx, time.Time{}, 1<<40)
		if err != nil || full != 0 {
			t.Fatalf("retain under the size: %d %v", full, err)
		}
		p, _ := s.Search(ctx, Query{Limit: 1})
		if p.Events[0].Offset != 199 {
			t.Fatal("newest event gone")
		}
		st, _ = s.Stats(ctx)
		if st.StoredBytes <= 0 {
			t.Fatalf("stats: %d stored bytes", st.StoredBytes)
		}
		n, err = s.Retain(ctx, time.Time{}, st.StoredBytes/2)
		if err != nil || n < 60 || n > 80 {
			t.Fatalf("retain by size: %d %v", n, err)
		}
		if _, err := s.Get(ctx, "t", 0, 199); err != nil {
			t.Fatalf("newest event after size retention: %v", err)
		}
		if _, err := s.Get(ctx, "t", 0, 60); !errors.Is(err, ErrNotFound) {
			t.Fatalf("oldest event after size retention: %v", err)
		}
	})

	t.Run("Receipts", func(t *testing.T) {
		s := open(t)
		rs := []Receipt{
			{Group: "billing", EventID: "e1", Topic: "orders", Partition: 0, Offset: 1, Outcome: "retry", Attempts: 1, Time: t0},
			{Group: "billing", EventID: "e1", Topic: "orders", Partition: 0, Offset: 1, Outcome: "success", Attempts: 2, Duration: 1.5, Time: t0.Add(time.Second)},
			{Group: "shipping", EventID: "e1", Topic: "orders", Partition: 0, Offset: 1, Outcome: "dead-letter", Attempts: 5, Time: t0.Add(2 * time.Second)},
			{Group: "billing", EventID: "e2", Topic: "orders", Partition: 0, Offset: 2, Outcome: "skipped", Attempts: 1, Time: t0},
		}
		if err := s.AddReceipts(ctx, rs); err != nil {
			t.Fatal(err)
		}
		if err := s.AddReceipts(ctx, rs[1:2]); err != nil {
			t.Fatal(err)
		}
		got, err := s.Receipts(ctx, []string{"e1", "e1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Group != "billing" || got[0].Outcome != "success" || got[0].Attempts != 2 || got[0].Duration != 1.5 ||
			got[1].Group != "shipping" || got[1].Outcome != "dead-letter" {
			t.Fatalf("receipts of e1: %+v", got)
		}
	})

	t.Run("Replays", func(t *testing.T) {
		s := open(t)
		if _, err := s.Replay(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing replay: %v", err)
		}
		st := ReplayState{ID: "r1", Spec: ReplaySpec{Filter: Filter{Type: "x"}, ToGroup: "g", Rate: 10}, Status: "running", Total: 5, Created: t0}
		if err := s.SaveReplay(ctx, st); err != nil {
			t.Fatal(err)
		}
		st.Done, st.Cursor, st.Status = 3, "abc", "done"
		if err := s.SaveReplay(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveReplay(ctx, ReplayState{ID: "r2", Created: t0.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Replay(ctx, "r1")
		if err != nil || got.Done != 3 || got.Cursor != "abc" || got.Spec.ToGroup != "g" || got.Spec.Filter.Type != "x" || got.Status != "done" {
			t.Fatalf("replay r1: %+v %v", got, err)
		}
		all, err := s.Replays(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "r2" {
			t.Fatalf("replays: %+v %v", all, err)
		}
	})
}
