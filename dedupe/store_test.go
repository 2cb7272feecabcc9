package dedupe

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/pgtest"
)

// sqlDB is one SQL backend for the conformance tests.
type sqlDB struct {
	name    string
	dialect Dialect
	open    func(t *testing.T) *sql.DB
}

func openSQLite(t testing.TB, path string) *sql.DB {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

var sqlDBs = []sqlDB{
	{"sqlite", SQLite, func(t *testing.T) *sql.DB { return openSQLite(t, filepath.Join(t.TempDir(), "db")) }},
	{"postgres", Postgres, func(t *testing.T) *sql.DB {
		db, err := sql.Open("pgx", pgtest.Start(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
}

// testStore is the conformance test every Store passes.
func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	if seen, err := s.Seen(ctx, "g", "e1"); err != nil || seen {
		t.Fatalf("fresh store: seen=%v err=%v", seen, err)
	}
	for range 2 { // recording twice is fine
		if err := s.Record(ctx, "g", "e1"); err != nil {
			t.Fatal(err)
		}
	}
	if seen, _ := s.Seen(ctx, "g", "e1"); !seen {
		t.Fatal("recorded event not seen")
	}
	if seen, _ := s.Seen(ctx, "other", "e1"); seen {
		t.Fatal("event seen by another group")
	}
	// Wrap: a duplicate is not handled again; a failed call is not recorded.
	calls := 0
	h := Wrap(s, func(_ context.Context, m *agent.Message) error {
		calls++
		if string(m.Data) == "fail" {
			return agent.Retry(errors.New("no"))
		}
		return nil
	})
	m := &agent.Message{Event: &event.Event{ID: "e2", Data: []byte("fail")}, Group: "g"}
	if err := h(ctx, m); !errors.Is(err, agent.ErrRetry) {
		t.Fatalf("failing handler: %v", err)
	}
	m.Data = []byte("ok")
	for range 3 {
		if err := h(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 {
		t.Fatalf("handler called %d times, want 2 (one failure, one success)", calls)
	}
}

func TestMemoryStore(t *testing.T) { testStore(t, NewMemory(100, time.Hour)) }

func TestMemoryBoundAndExpiry(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := NewMemory(3, time.Minute)
	m.now = func() time.Time { return now }
	for _, id := range []string{"a", "b", "c", "d"} {
		m.Record(ctx, "g", id)
		now = now.Add(time.Second)
	}
	if seen, _ := m.Seen(ctx, "g", "a"); seen || m.Len() != 3 {
		t.Fatalf("oldest not evicted: len %d", m.Len())
	}
	now = now.Add(time.Minute - 2*time.Second) // b is now older than a minute
	if seen, _ := m.Seen(ctx, "g", "b"); seen {
		t.Fatal("expired entry seen")
	}
	if seen, _ := m.Seen(ctx, "g", "d"); !seen {
		t.Fatal("fresh entry forgotten")
	}
}

func TestSQLStore(t *testing.T) {
	for _, b := range sqlDBs {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			s, err := NewSQL(db, b.dialect, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Init(context.Background()); err != nil {
				t.Fatal(err)
			}
			testStore(t, s)
			n, err := s.Purge(context.Background(), time.Now().Add(time.Hour))
			if err != nil || n != 2 {
				t.Fatalf("purge: %d, %v", n, err)
			}
			t.Run("tx", func(t *testing.T) { testSQLHandle(t, db, s) })
		})
	}
}

// testSQLHandle: the handler's writes and the record commit together; a
// failed handler leaves neither; a duplicate does nothing.
func testSQLHandle(t *testing.T, db *sql.DB, s *SQL) {
	ctx := context.Background()
	if _, err := db.Exec("CREATE TABLE effects (id TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	ph := "?"
	if s.dialect == Postgres {
		ph = "$1"
	}
	fail := true
	h := s.Handle(func(ctx context.Context, tx *sql.Tx, m *agent.Message) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO effects (id) VALUES ("+ph+")", m.ID); err != nil {
			return err
		}
		if fail {
			return errors.New("after the write")
		}
		return agent.Warn(errors.New("fine"))
	})
	m := &agent.Message{Event: &event.Event{ID: "e9"}, Group: "g"}
	if err := h(ctx, m); err == nil {
		t.Fatal("failing handler returned nil")
	}
	count := func() (n int) {
		if err := db.QueryRow("SELECT COUNT(*) FROM effects").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if seen, _ := s.Seen(ctx, "g", "e9"); seen || count() != 0 {
		t.Fatalf("failed handler left effects %d or record %v", count(), seen)
	}
	fail = false
	for range 3 {
		if err := h(ctx, m); err != nil && !errors.Is(err, agent.ErrWarn) {
			t.Fatal(err)
		}
	}
	if seen, _ := s.Seen(ctx, "g", "e9"); !seen || count() != 1 {
		t.Fatalf("effects %d (want 1), recorded %v", count(), seen)
	}
	if err := s.Handle(nil)(ctx, &agent.Message{Event: &event.Event{}, Group: "g"}); !errors.Is(err, agent.ErrDeadLetter) {
		t.Fatalf("event without id: %v", err)
	}
}

func TestNewSQLRejectsBadTable(t *testing.T) {
	if _, err := NewSQL(nil, SQLite, "x; DROP TABLE y"); err == nil {
		t.Fatal("accepted a bad table name")
	}
}
