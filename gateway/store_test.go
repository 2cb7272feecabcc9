package gateway_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/pgtest"
)

// stores are the Store implementations the conformance test runs on.
var stores = []struct {
	name string
	open func(t *testing.T) gateway.Store
}{
	{"sqlite", func(t *testing.T) gateway.Store {
		s, err := gateway.OpenStore(context.Background(), filepath.Join(t.TempDir(), "s.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(t *testing.T) gateway.Store {
		db, err := sql.Open("pgx", pgtest.Start(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := gateway.NewSQLStore(context.Background(), db, gateway.Postgres)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

func newReq(id, key string, exp time.Time) *gateway.Request {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &gateway.Request{ID: id, Topic: "t", Principal: "p", IdempotencyKey: key, State: gateway.Accepted,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: exp, Partition: -1, Offset: -1}
}

// TestStoreConformance runs the Store contract on SQLite and PostgreSQL.
func TestStoreConformance(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			ctx := context.Background()
			far := time.Now().Add(time.Hour)

			// Create, and the idempotency key's uniqueness under concurrency.
			var wg sync.WaitGroup
			ids := make([]string, 8)
			created := make([]bool, 8)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, c, err := s.Create(ctx, newReq("r"+string(rune('a'+i)), "k1", far))
					if err != nil {
						t.Error(err)
						return
					}
					ids[i], created[i] = r.ID, c
				}()
			}
			wg.Wait()
			n := 0
			for i := range 8 {
				if created[i] {
					n++
				}
				if ids[i] != ids[0] {
					t.Fatalf("ids %v: one key, several requests", ids)
				}
			}
			if n != 1 {
				t.Fatalf("%d creates succeeded for one key", n)
			}
			id := ids[0]
			if _, err := s.Get(ctx, "nope"); err != gateway.ErrNotFound {
				t.Fatalf("Get unknown: %v", err)
			}

			// Transitions apply only from the named states.
			r, ok, err := s.Transition(ctx, id, gateway.Transition{From: []gateway.State{gateway.Accepted}, To: gateway.Pending, Partition: 3, Offset: 9, At: time.Now()})
			if err != nil || !ok || r.State != gateway.Pending || r.Partition != 3 || r.Offset != 9 {
				t.Fatalf("to pending: %+v %v %v", r, ok, err)
			}
			r, ok, err = s.Transition(ctx, id, gateway.Transition{From: []gateway.State{gateway.Accepted, gateway.Pending}, To: gateway.Succeeded,
				ContentType: "application/json", Result: []byte(`{"a":1}`), Partition: -1, Offset: -1, At: time.Now()})
			if err != nil || !ok || r.State != gateway.Succeeded || string(r.Result) != `{"a":1}` || r.Partition != 3 {
				t.Fatalf("to succeeded: %+v %v %v", r, ok, err)
			}
			r, ok, err = s.Transition(ctx, id, gateway.Transition{From: []gateway.State{gateway.Accepted, gateway.Pending}, To: gateway.Failed, Error: "late", Partition: -1, Offset: -1, At: time.Now()})
			if err != nil || ok || r.State != gateway.Succeeded {
				t.Fatalf("a final request changed: %+v %v %v", r, ok, err)
			}

			// Expiry: only open requests past their time.
			past := time.Now().Add(-time.Second)
			for _, id := range []string{"e1", "e2"} {
				if _, _, err := s.Create(ctx, newReq(id, "", past)); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := s.Create(ctx, newReq("e3", "", far)); err != nil {
				t.Fatal(err)
			}
			exp, err := s.Expire(ctx, time.Now())
			if err != nil || len(exp) != 2 || exp[0].State != gateway.Expired {
				t.Fatalf("expire: %d %v", len(exp), err)
			}
			if exp, _ := s.Expire(ctx, time.Now()); len(exp) != 0 {
				t.Fatalf("expired twice: %d", len(exp))
			}

			// Callbacks: scheduled on the final transition, leased once.
			cr := newReq("cb", "", far)
			cr.CallbackURL = "http://x/"
			if _, _, err := s.Create(ctx, cr); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			if got, _ := s.ClaimCallbacks(ctx, now, time.Minute, 10); len(got) != 0 {
				t.Fatalf("callback due before the request finished: %d", len(got))
			}
			if _, _, err := s.Transition(ctx, "cb", gateway.Transition{From: []gateway.State{gateway.Accepted}, To: gateway.Failed, Error: "x", Partition: -1, Offset: -1, At: now}); err != nil {
				t.Fatal(err)
			}
			got, err := s.ClaimCallbacks(ctx, now.Add(time.Millisecond), time.Minute, 10)
			if err != nil || len(got) != 1 || got[0].ID != "cb" || got[0].CallbackState != gateway.CallbackPending {
				t.Fatalf("claim: %v %v", got, err)
			}
			if again, _ := s.ClaimCallbacks(ctx, now.Add(time.Millisecond), time.Minute, 10); len(again) != 0 {
				t.Fatal("a leased callback was claimed again")
			}
			att := []gateway.Attempt{{At: now.UTC().Truncate(time.Millisecond), Status: 500, Error: "target answered 500"}}
			if err := s.SaveCallback(ctx, "cb", gateway.CallbackPending, att, now.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if early, _ := s.ClaimCallbacks(ctx, now.Add(500*time.Millisecond), time.Minute, 10); len(early) != 0 {
				t.Fatal("claimed before its next attempt time")
			}
			got, _ = s.ClaimCallbacks(ctx, now.Add(2*time.Second), time.Minute, 10)
			if len(got) != 1 || len(got[0].CallbackAttempts) != 1 || got[0].CallbackAttempts[0].Status != 500 {
				t.Fatalf("after a save: %+v", got)
			}
			if err := s.SaveCallback(ctx, "cb", gateway.CallbackDelivered, att, time.Time{}); err != nil {
				t.Fatal(err)
			}

			// Produce idempotency keys.
			if e, err := s.BeginIdem(ctx, "ik", now); e != nil || err != nil {
				t.Fatalf("first begin: %v %v", e, err)
			}
			if e, _ := s.BeginIdem(ctx, "ik", now); e == nil || e.Done {
				t.Fatalf("second begin while in flight: %+v", e)
			}
			if err := s.FinishIdem(ctx, "ik", 200, []byte("body")); err != nil {
				t.Fatal(err)
			}
			if e, _ := s.BeginIdem(ctx, "ik", now); e == nil || !e.Done || e.Status != 200 || string(e.Body) != "body" {
				t.Fatalf("after finish: %+v", e)
			}
			s.BeginIdem(ctx, "ik2", now)
			if err := s.AbortIdem(ctx, "ik2"); err != nil {
				t.Fatal(err)
			}
			if e, _ := s.BeginIdem(ctx, "ik2", now); e != nil {
				t.Fatalf("an aborted key is still held: %+v", e)
			}

			// Positions only rise.
			if err := s.SavePositions(ctx, "rt", map[int32]int64{0: 5, 1: 7}); err != nil {
				t.Fatal(err)
			}
			if err := s.SavePositions(ctx, "rt", map[int32]int64{0: 3, 1: 9}); err != nil {
				t.Fatal(err)
			}
			pos, err := s.Positions(ctx, "rt")
			if err != nil || pos[0] != 5 || pos[1] != 9 || len(pos) != 2 {
				t.Fatalf("positions %v %v", pos, err)
			}

			// Purge: final and settled requests only.
			n64, err := s.Purge(ctx, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if n64 != 4 { // the succeeded one, two expired, the callback one
				t.Fatalf("purged %d, want 4", n64)
			}
			if _, err := s.Get(ctx, "e3"); err != nil {
				t.Fatalf("an open request was purged: %v", err)
			}
		})
	}
}

// TestPostgresStoreTwoInstances: two gateways sharing a PostgreSQL store
// answer each other's requests.
func TestPostgresStoreTwoInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "pg", 1)
	open := func() gateway.Store {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := gateway.NewSQLStore(context.Background(), db, gateway.Postgres)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sa, sb := open(), open()
	a := startGateway(t, addrs, func(c *gateway.Config) { c.Store = sa })
	b := startGateway(t, addrs, func(c *gateway.Config) { c.Store = sb })
	st := submit(t, a, "pg", "", `{}`, "Idempotency-Key", "one")
	if again := submit(t, b, "pg", "", `{}`, "Idempotency-Key", "one"); again.ID != st.ID {
		t.Fatalf("the key on B made a second request %s (A made %s)", again.ID, st.ID)
	}
	rawReply(t, addrs, "spool.gateway.replies", st.ID, "", []byte(`"pg"`))
	if code, s := poll(t, b, st.ID, 10); code != 200 || string(s.Result) != `"pg"` {
		t.Fatalf("B: %d %+v", code, s)
	}
	if recs := kafkatest.ReadAll(t, addrs, "pg"); len(recs) != 1 {
		t.Fatalf("%d commands, want 1", len(recs))
	}
}
