package gateway

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/pgtest"
)

// commitSeen is one of the writer's commits as the engine was set for it.
type commitSeen struct {
	durable bool // what the store asked for
	synced  bool // what the engine reports: SQLite synchronous=FULL, PostgreSQL the server's synchronous_commit (not off)
	n       int
}

// watchCommits makes s report its commits, with the engine's own setting
// read inside each transaction. gate, if not nil, holds each commit until
// it is closed, after a send on held.
func watchCommits(t *testing.T, s *SQLStore, gate, held chan struct{}) <-chan commitSeen {
	ch := make(chan commitSeen, 64)
	// A durable PostgreSQL commit keeps the server's synchronous_commit
	// (which may be stronger than on); the test server runs with off, so
	// pretend here that it is on.
	if s.d == Postgres {
		if _, err := s.db.Exec(`ALTER DATABASE "` + currentDatabase(t, s.db) + `" SET synchronous_commit = on`); err != nil {
			t.Fatal(err)
		}
		s.db.SetMaxIdleConns(0) // new connections see the setting
		s.db.SetMaxIdleConns(2)
	}
	s.beforeCommit = func(tx *sql.Tx, durable bool, n int) {
		c := commitSeen{durable: durable, n: n}
		if s.d == Postgres {
			var v string
			if err := tx.QueryRow(`SHOW synchronous_commit`).Scan(&v); err != nil {
				t.Error(err)
			}
			c.synced = v != "off"
		} else {
			var v int
			if err := tx.QueryRow(`PRAGMA synchronous`).Scan(&v); err != nil {
				t.Error(err)
			}
			c.synced = v == 2 // FULL
		}
		if gate != nil {
			held <- struct{}{}
			<-gate
		}
		ch <- c
	}
	return ch
}

func currentDatabase(t *testing.T, db *sql.DB) string {
	var name string
	if err := db.QueryRow(`SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func openDurabilityStores(t *testing.T) map[string]*SQLStore {
	ctx := context.Background()
	lite, err := OpenStore(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	out := map[string]*SQLStore{"sqlite": lite}
	db, err := sql.Open("pgx", pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pg, err := NewSQLStore(ctx, db, Postgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	out["postgres"] = pg
	return out
}

// TestStoreDurability: a new request is committed with an fsync before
// Create returns (an idempotent retry after a power loss must find it, or
// it would produce a second command), and so are cancels and failures;
// a command's position, a reply's result, expiry and the reply read
// positions are committed without one; a batch holding both kinds is
// committed with one.
func TestStoreDurability(t *testing.T) {
	for name, s := range openDurabilityStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			seen := watchCommits(t, s, nil, nil)
			expect := func(what string, durable bool) {
				t.Helper()
				c := <-seen
				if c.durable != durable || c.synced != durable {
					t.Fatalf("%s: committed durable=%v with the engine synced=%v; want %v", what, c.durable, c.synced, durable)
				}
			}
			now := time.Now().UTC()
			req := func(id, key string) *Request {
				return &Request{ID: id, Topic: "t", IdempotencyKey: key, State: Accepted, CreatedAt: now, UpdatedAt: now,
					ExpiresAt: now.Add(time.Hour), Partition: -1, Offset: -1}
			}
			if _, _, err := s.Create(ctx, req("a", "ka")); err != nil {
				t.Fatal(err)
			}
			expect("Create", true)
			if _, _, err := s.Transition(ctx, "a", Transition{From: []State{Accepted}, To: Pending, Partition: 1, Offset: 7,
				At: now, Relaxed: true}); err != nil {
				t.Fatal(err)
			}
			expect("relaxed Transition (command position)", false)
			if _, _, err := s.Transition(ctx, "a", Transition{From: []State{Pending}, To: Cancelled, Partition: -1, Offset: -1,
				At: now}); err != nil {
				t.Fatal(err)
			}
			expect("Transition (cancel)", true)
			if err := s.SavePositions(ctx, "replies", map[int32]int64{0: 5}); err != nil {
				t.Fatal(err)
			}
			expect("SavePositions", false)
			if _, err := s.Expire(ctx, now); err != nil {
				t.Fatal(err)
			}
			expect("Expire", false)
			if _, err := s.BeginIdem(ctx, "p", now); err != nil {
				t.Fatal(err)
			}
			expect("BeginIdem", true)

			// A relaxed and a durable write in one batch: the batch is
			// durable. The gate holds a first commit until both are queued.
			gate, held := make(chan struct{}), make(chan struct{}, 2)
			seen = watchCommits(t, s, gate, held)
			var wg sync.WaitGroup
			write := func(f func() error) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := f(); err != nil {
						t.Error(err)
					}
				}()
			}
			write(func() error { return s.SavePositions(ctx, "replies", map[int32]int64{0: 6}) })
			<-held // the writer is in its commit
			deadline := time.Now().Add(10 * time.Second)
			write(func() error { return s.SavePositions(ctx, "replies", map[int32]int64{1: 1}) })
			write(func() error { _, _, err := s.Create(ctx, req("b", "kb")); return err })
			for len(s.ops) < 2 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if len(s.ops) < 2 {
				t.Fatal("the two writes were not queued")
			}
			close(gate)
			if c := <-seen; c.durable || c.n != 1 {
				t.Fatalf("first commit: %+v; want the relaxed write alone", c)
			}
			if c := <-seen; !c.durable || !c.synced || c.n != 2 {
				t.Fatalf("mixed batch: %+v; want both writes in one durable commit", c)
			}
			wg.Wait()
		})
	}
}

// TestSQLiteStoreNeedsTwoConnections: the writer keeps a connection of its
// own, so a pool of one would leave none for reads; NewSQLStore refuses it.
func TestSQLiteStoreNeedsTwoConnections(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if s, err := NewSQLStore(context.Background(), db, SQLite); err == nil {
		s.Close()
		t.Fatal("NewSQLStore took a SQLite pool of one connection")
	}
	db.SetMaxOpenConns(2)
	s, err := NewSQLStore(context.Background(), db, SQLite)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	if _, _, err := s.Create(ctx, &Request{ID: "a", Topic: "t", State: Accepted, CreatedAt: now, UpdatedAt: now,
		ExpiresAt: now.Add(time.Hour), Partition: -1, Offset: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
}
