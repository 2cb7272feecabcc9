package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/pgtest"
	"github.com/spoolmq/spool/outbox"
)

// pgBouncerModes are the pgx query exec modes (default_query_exec_mode in
// the DSN) that work through PgBouncer in transaction mode: neither keeps
// a named prepared statement across statements, and both send each
// statement in one round trip. pgx's default (cache_statement) fails with
// "prepared statement ... does not exist" / "already exists" there, and
// describe_exec (two round trips) with "unnamed prepared statement does
// not exist".
var pgBouncerModes = []string{"simple_protocol", "exec"}

// behindPgBouncer returns a fresh database on the test's PostgreSQL server
// opened directly, and the DSN of that database through a PgBouncer in
// pool mode mode started for t, without an exec mode.
func behindPgBouncer(t *testing.T, b backend, mode string) (direct *sql.DB, dsn string) {
	t.Helper()
	direct, dsn = b.open(t)
	return direct, pgtest.StartPgBouncer(t, dsn, mode)
}

// TestPgBouncer: through PgBouncer in transaction mode, with each exec
// mode that works there, Migrate, concurrent writers calling Add and a
// poll-only relay (NoListen) on its own connections: every committed
// event is published once, in commit order per key, none of the
// rolled-back ones; ReadStatus works through it too.
func TestPgBouncer(t *testing.T) {
	b := postgres(t)
	for _, exec := range pgBouncerModes {
		t.Run(exec, func(t *testing.T) {
			kafkatest.Run(t, func(t *testing.T, addrs []string) {
				direct, dsn := behindPgBouncer(t, b, pgtest.Transaction)
				dsn += " default_query_exec_mode=" + exec
				writers := openPG(t, dsn)
				migrate(t, writers)
				kafkatest.CreateTopic(t, addrs, "pgb", 4)
				cfg := relayConfig(t, openPG(t, dsn), addrs)
				cfg.NoListen = true
				r := startRelay(t, cfg)
				committed, rolledBack := writeMany(t, writers, "pgb", 24, 4, 30, 3, nil, nil)
				waitDrained(t, direct, 30*time.Second)
				if dups := checkDelivery(t, committed, rolledBack, readTopic(t, addrs, "pgb")); dups != 0 {
					t.Fatalf("%d duplicates with one relay and no failures", dups)
				}
				if st := r.Stats(); st.Published != int64(len(committed)) || st.Buckets != outbox.NumBuckets || st.Listening {
					t.Fatalf("stats %+v, want %d published, all %d buckets, not listening", st, len(committed), outbox.NumBuckets)
				}
				st, err := outbox.ReadStatus(context.Background(), writers)
				if err != nil {
					t.Fatalf("ReadStatus through PgBouncer: %v", err)
				}
				if len(st.Topics) != 0 || len(st.Relays) != 1 || st.Relays[0].Buckets != outbox.NumBuckets {
					t.Fatalf("status through PgBouncer: %+v, want nothing pending and one relay holding every bucket", st)
				}
			})
		})
	}
}

// TestPgBouncerTwoRelays: two poll-only relays, each with a pool of its
// own through PgBouncer in transaction mode, share the buckets and keep
// per-key order while writers commit and one relay is closed and started
// again mid-run (its leases are released and taken by the other, then
// shared again).
func TestPgBouncerTwoRelays(t *testing.T) {
	b := postgres(t)
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		direct, dsn := behindPgBouncer(t, b, pgtest.Transaction)
		dsn += " default_query_exec_mode=" + pgBouncerModes[0]
		writers := openPG(t, dsn)
		migrate(t, writers)
		kafkatest.CreateTopic(t, addrs, "pgb2", 4)
		start := func(i int) *outbox.Relay {
			cfg := relayConfig(t, openPG(t, dsn), addrs)
			cfg.ID = fmt.Sprintf("pgb-relay-%d-%d", i, time.Now().UnixNano())
			cfg.NoListen = true
			return startRelay(t, cfg)
		}
		relays := []*outbox.Relay{start(0), start(1)}
		spread := func() bool {
			a, b := relays[0].Stats().Buckets, relays[1].Stats().Buckets
			return a == outbox.NumBuckets/2 && b == outbox.NumBuckets/2
		}
		kafkatest.Eventually(t, 30*time.Second, "buckets spread over both relays", spread)

		ticks := make(chan struct{}, 100)
		var ctl sync.WaitGroup
		ctl.Add(1)
		go func() {
			defer ctl.Done()
			n := 0
			for range ticks {
				switch n++; n {
				case 3:
					relays[0].Close()
				case 8:
					relays[0] = start(0)
				}
			}
		}()
		committed, rolledBack := writeMany(t, writers, "pgb2", 24, 4, 30, 5, ticks, nil)
		close(ticks)
		ctl.Wait()
		waitDrained(t, direct, 60*time.Second)
		dups := checkDelivery(t, committed, rolledBack, readTopic(t, addrs, "pgb2"))
		kafkatest.Eventually(t, 30*time.Second, "buckets spread again", spread)
		t.Logf("%d events, %d duplicates (a relay closed with records in flight)", len(committed), dups)
	})
}

// TestPgBouncerKeyLock: the insert trigger's transaction-scoped advisory
// lock holds through PgBouncer in transaction mode: an open transaction
// keeps its server connection, so a second transaction adding the same
// key (on another server connection) waits until the first commits, and
// the ids follow commit order.
func TestPgBouncerKeyLock(t *testing.T) {
	direct, dsn := behindPgBouncer(t, postgres(t), pgtest.Transaction)
	db := openPG(t, dsn+" default_query_exec_mode="+pgBouncerModes[0])
	migrate(t, db)
	checkKeyLock(t, db, direct)
}

// TestPgBouncerListen: a relay left with LISTEN on (no NoListen) through
// PgBouncer. In transaction mode LISTEN runs but the server connection
// that ran it goes back to the pool, so notifications never reach the
// relay: its probe notice fails, it logs a warning naming NoListen,
// reports Listening false, and still delivers every event by polling. In
// session mode LISTEN works (the client keeps its server connection).
func TestPgBouncerListen(t *testing.T) {
	b := postgres(t)
	for _, mode := range []string{pgtest.Transaction, pgtest.Session} {
		t.Run(mode, func(t *testing.T) {
			_, dsn := behindPgBouncer(t, b, mode)
			db := openPG(t, dsn+" default_query_exec_mode="+pgBouncerModes[0])
			migrate(t, db)
			addrs := kafkatest.StartKfake(t)
			kafkatest.CreateTopic(t, addrs, "t", 1)
			logs := &logBuffer{t: t}
			cfg := relayConfig(t, db, addrs)
			cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			r := startRelay(t, cfg)
			if mode == pgtest.Session {
				kafkatest.Eventually(t, 30*time.Second, "LISTEN active", func() bool { return r.Stats().Listening })
			} else {
				kafkatest.Eventually(t, 30*time.Second, "a warning naming NoListen", func() bool {
					return logs.contains("gets no notifications") && logs.contains("set NoListen")
				})
			}
			for i := range 3 {
				addTx(t, db, "t", []string{"k"}, true)
				kafkatest.Eventually(t, 30*time.Second, "the event published", func() bool { return r.Stats().Published == int64(i+1) })
			}
			if got, want := r.Stats().Listening, mode == pgtest.Session; got != want {
				t.Fatalf("%s mode: Listening = %v, want %v", mode, got, want)
			}
		})
	}
}

// logBuffer keeps the relay's log lines and copies them to the test log.
type logBuffer struct {
	t  testing.TB
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	return testWriter{l.t}.Write(p)
}

func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}
