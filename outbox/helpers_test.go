package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/pgtest"
	"github.com/spoolmq/spool/outbox"
)

// backend opens a fresh outbox database of one dialect.
type backend struct {
	name    string
	dialect outbox.Dialect
	// open returns a new, empty, migrated database and a DSN a helper
	// process can open it with.
	open func(t testing.TB) (*sql.DB, string)
}

// backends returns SQLite and PostgreSQL. One PostgreSQL server serves
// the whole top-level test; each subtest gets a database of its own.
func backends(top testing.TB) []backend {
	var once sync.Once
	var base string
	var n atomic.Int64
	return []backend{
		{"sqlite", outbox.SQLite, func(t testing.TB) (*sql.DB, string) {
			dsn := filepath.Join(t.TempDir(), "outbox.db")
			return openSQLite(t, dsn), dsn
		}},
		{"postgres", outbox.Postgres, func(t testing.TB) (*sql.DB, string) {
			once.Do(func() { base = pgtest.Start(top) })
			if base == "" {
				t.Skip("pgtest: no server")
			}
			name := fmt.Sprintf("outbox_%d", n.Add(1))
			admin := openPG(t, base)
			if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
				t.Fatal(err)
			}
			dsn := strings.Replace(base, "dbname=postgres", "dbname="+name, 1)
			return openPG(t, dsn), dsn
		}},
	}
}

// openDB opens another handle on a backend's database: dsn as its open
// returned it, on SQLite if name is "sqlite", PostgreSQL otherwise.
func openDB(t testing.TB, name, dsn string) *sql.DB {
	if name == "sqlite" {
		return openSQLite(t, dsn)
	}
	return openPG(t, dsn)
}

// helperDB opens the database of a relay helper process: OUTBOX_DSN of
// the backend OUTBOX_DIALECT names.
func helperDB(t testing.TB) *sql.DB {
	return openDB(t, os.Getenv("OUTBOX_DIALECT"), os.Getenv("OUTBOX_DSN"))
}

func openSQLite(t testing.TB, path string) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// pgConns is the connection pool openPG gives a handle: room for
// BenchmarkRelayLatency's 64 writers and a relay's 3 connections, under
// the test server's max_connections (100). database/sql keeps only 2 idle
// connections by default: with more concurrent users than that, nearly
// every transaction opens a connection (a server backend fork).
const pgConns = 72

func openPG(t testing.TB, dsn string) *sql.DB {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(pgConns)
	db.SetMaxIdleConns(pgConns)
	t.Cleanup(func() { db.Close() })
	return db
}

// each runs f for every backend × cluster, with a migrated database.
func each(t *testing.T, f func(t *testing.T, db *sql.DB, addrs []string)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			kafkatest.Run(t, func(t *testing.T, addrs []string) {
				db, _ := b.open(t)
				migrate(t, db)
				f(t, db, addrs)
			})
		})
	}
}

func migrate(t testing.TB, db *sql.DB) {
	t.Helper()
	if err := outbox.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

// sent is one committed event as the test wrote it.
type sent struct {
	topic, key, id string
}

// newEvent returns a valid event of key k.
func newEvent(t testing.TB, k string, payload any) event.Event {
	t.Helper()
	ev, err := event.New("test.happened", event.JSON, payload)
	if err != nil {
		t.Fatal(err)
	}
	ev.Source = "/outbox-test"
	if k != "" {
		ev.Key = []byte(k)
	}
	return *ev
}

// addTx adds the events of keys in one transaction and commits it (or
// rolls it back), returning what it added.
func addTx(t testing.TB, db *sql.DB, topic string, keys []string, commit bool) []sent {
	t.Helper()
	s, err := addTxE(db, topic, keys, commit)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addTxE(db *sql.DB, topic string, keys []string, commit bool) ([]sent, error) {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	var out []sent
	for _, k := range keys {
		ev, err := event.New("test.happened", event.JSON, map[string]string{"key": k})
		if err != nil {
			tx.Rollback()
			return nil, err
		}
		ev.Source, ev.Key = "/outbox-test", []byte(k)
		if err := outbox.Add(ctx, tx, *ev, outbox.Topic(topic)); err != nil {
			tx.Rollback()
			return nil, err
		}
		out = append(out, sent{topic, k, ev.ID})
	}
	if !commit {
		return out, tx.Rollback()
	}
	return out, tx.Commit()
}

// relayConfig is a relay tuned for tests: short leases and timeouts.
func relayConfig(t testing.TB, db *sql.DB, addrs []string) outbox.Config {
	return outbox.Config{
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		DB:     db, Brokers: addrs,
		PollInterval:   20 * time.Millisecond,
		LeaseTTL:       3 * time.Second,
		PublishTimeout: time.Second,
		RetryBackoff:   20 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond,
		StatsInterval: 50 * time.Millisecond, CleanupInterval: 50 * time.Millisecond,
		ClientOptions: []kgo.Opt{kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })},
	}
}

func startRelay(t testing.TB, cfg outbox.Config) *outbox.Relay {
	t.Helper()
	r, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// pendingRows counts rows not yet published.
func pendingRows(t testing.TB, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM spool_outbox_pending").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitDrained(t testing.TB, db *sql.DB, d time.Duration) {
	t.Helper()
	kafkatest.Eventually(t, d, "the outbox to drain", func() bool { return pendingRows(t, db) == 0 })
}

// got is one event as read back from the topic.
type got struct {
	key, id string
}

// readTopic reads every record of topic.
func readTopic(t testing.TB, addrs []string, topic string) []got {
	t.Helper()
	var out []got
	for _, r := range kafkatest.ReadAll(t, addrs, topic) {
		ev, err := event.FromRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got{string(r.Key), ev.ID})
	}
	return out
}

// checkDelivery asserts that the topic holds every committed event, no
// rolled-back one, and, per key, the first copy of each event in commit
// order. It returns the number of duplicates (extra copies of a ce_id).
func checkDelivery(t testing.TB, committed []sent, rolledBack []sent, records []got) int {
	t.Helper()
	want := map[string][]string{}
	ids := map[string]bool{}
	for _, s := range committed {
		want[s.key] = append(want[s.key], s.id)
		ids[s.id] = true
	}
	bad := map[string]bool{}
	for _, s := range rolledBack {
		bad[s.id] = true
	}
	seen := map[string]bool{}
	firsts := map[string][]string{}
	dups := 0
	for _, r := range records {
		if bad[r.id] {
			t.Fatalf("rolled-back event %s (key %s) was published", r.id, r.key)
		}
		if !ids[r.id] {
			t.Fatalf("unexpected event %s (key %s) in the topic", r.id, r.key)
		}
		if seen[r.id] {
			dups++
			continue
		}
		seen[r.id] = true
		firsts[r.key] = append(firsts[r.key], r.id)
	}
	for k, w := range want {
		g := firsts[k]
		if len(g) != len(w) {
			t.Fatalf("key %q: %d distinct events published, %d committed", k, len(g), len(w))
		}
		for i := range w {
			if g[i] != w[i] {
				t.Fatalf("key %q: event %d is %s, committed order says %s (published %v, committed %v)", k, i, g[i], w[i], g, w)
			}
		}
	}
	return dups
}

// testWriter writes log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
