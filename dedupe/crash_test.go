package dedupe

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/pgtest"
	"github.com/spoolmq/spool/producer"
)

type transfer struct {
	From, To string
	Amount   int
}

const (
	crashTopic    = "ledger"
	crashGroup    = "ledger-g"
	crashAccounts = 20
	crashEvents   = 600
	crashStart    = 1000 // each account's opening balance
)

func ledgerHandler(db *sql.DB, d Dialect) (*SQL, agent.Handler) {
	s, _ := NewSQL(db, d, "")
	p := func(n int) string {
		if d == Postgres {
			return fmt.Sprintf("$%d", n)
		}
		return "?"
	}
	h := s.Handle(func(ctx context.Context, tx *sql.Tx, m *agent.Message) error {
		tr, err := event.Decode[transfer](m.Event)
		if err != nil {
			return agent.DeadLetter(err)
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"UPDATE accounts SET balance = balance - " + p(1) + " WHERE id = " + p(2), []any{tr.Amount, tr.From}},
			{"UPDATE accounts SET balance = balance + " + p(1) + " WHERE id = " + p(2), []any{tr.Amount, tr.To}},
			{"INSERT INTO applied (event_id) VALUES (" + p(1) + ")", []any{m.ID}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	return s, h
}

func crashAgent(addrs []string, session time.Duration, h agent.Handler, commit time.Duration) (*agent.Agent, error) {
	return agent.New(crashGroup, []string{crashTopic}, agent.WithBrokers(addrs...),
		agent.WithClientOptions(kgo.SessionTimeout(session), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		agent.WithConcurrency(8), agent.WithCommitInterval(commit), agent.WithHandler("transfer", h))
}

// TestCrashHelper is the agent process that TestCrashExactlyOnce kills.
func TestCrashHelper(t *testing.T) {
	if os.Getenv("DEDUPE_CRASH_HELPER") == "" {
		t.Skip("helper process for TestCrashExactlyOnce")
	}
	d := SQLite
	if os.Getenv("DEDUPE_DIALECT") == "postgres" {
		d = Postgres
	}
	db := openDB(t, d, os.Getenv("DEDUPE_DSN"))
	_, h := ledgerHandler(db, d)
	// Commits far apart: when the parent kills us, much is handled and
	// not committed, so the restart sees duplicates.
	// The parent's session timeout: the takeover waits this long for the
	// killed member to expire.
	session, err := time.ParseDuration(os.Getenv("DEDUPE_SESSION_TIMEOUT"))
	if err != nil {
		t.Fatalf("DEDUPE_SESSION_TIMEOUT: %v", err)
	}
	a, err := crashAgent(strings.Split(os.Getenv("DEDUPE_BROKERS"), ","), session, h, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Fatal(a.Run(context.Background())) // runs until killed
}

func openDB(t testing.TB, d Dialect, dsn string) *sql.DB {
	if d == SQLite {
		return openSQLite(t, dsn)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestCrashExactlyOnce: an agent process applying ledger transfers is
// killed (SIGKILL) mid-stream, before it committed anything; a new agent
// takes over. Every transfer is delivered at least once (the restart sees
// the crashed process's work again) and, through the SQL dedupe store,
// applied exactly once: the sum of balances is unchanged and each balance
// is what the transfers say.
func TestCrashExactlyOnce(t *testing.T) {
	if os.Getenv("DEDUPE_CRASH_HELPER") != "" {
		t.Skip("in helper process")
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			kafkatest.Run(t, func(t *testing.T, addrs []string) { testCrash(t, addrs, dialect) })
		})
	}
}

func testCrash(t *testing.T, addrs []string, dialect string) {
	ctx := context.Background()
	d, dsn := SQLite, filepath.Join(t.TempDir(), "ledger.db")
	if dialect == "postgres" {
		d, dsn = Postgres, pgtest.Start(t)
	}
	db := openDB(t, d, dsn)
	s, _ := NewSQL(db, d, "")
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE accounts (id TEXT PRIMARY KEY, balance BIGINT NOT NULL)",
		"CREATE TABLE applied (event_id TEXT NOT NULL)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{}
	for i := range crashAccounts {
		id := fmt.Sprintf("acct-%02d", i)
		want[id] = crashStart
		if _, err := db.Exec(fmt.Sprintf("INSERT INTO accounts (id, balance) VALUES ('%s', %d)", id, crashStart)); err != nil {
			t.Fatal(err)
		}
	}
	kafkatest.CreateTopic(t, addrs, crashTopic, 4)
	p, err := producer.New(producer.WithBrokers(addrs...), producer.WithSource("/bank"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range crashEvents {
		tr := transfer{From: fmt.Sprintf("acct-%02d", i%crashAccounts), To: fmt.Sprintf("acct-%02d", (i*7+3)%crashAccounts), Amount: 1 + i%13}
		want[tr.From] -= tr.Amount
		want[tr.To] += tr.Amount
		ev, err := event.New("transfer", event.JSON, tr)
		if err != nil {
			t.Fatal(err)
		}
		ev.Key = []byte(tr.From)
		p.PublishAsync(ctx, crashTopic, ev, func(_ producer.Result, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()

	applied := func() (n int) {
		if err := db.QueryRow("SELECT COUNT(*) FROM applied").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Run the agent in a child process and kill it once it applied 200.
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "DEDUPE_CRASH_HELPER=1", "DEDUPE_DIALECT="+dialect, "DEDUPE_DSN="+dsn,
		"DEDUPE_BROKERS="+strings.Join(addrs, ","), "DEDUPE_SESSION_TIMEOUT="+kafkatest.SessionTimeout(addrs).String())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	kafkatest.Eventually(t, 60*time.Second, "child applies 200 transfers", func() bool {
		select {
		case <-exited:
			t.Fatalf("child exited early:\n%s", out.String())
		default:
		}
		return applied() >= 200
	})
	cmd.Process.Kill()
	<-exited
	before := applied()

	// Restart in this process; count deliveries that the store absorbed.
	_, h := ledgerHandler(db, d)
	var deliveries atomic.Int64
	counting := func(ctx context.Context, m *agent.Message) error { deliveries.Add(1); return h(ctx, m) }
	a, err := crashAgent(addrs, kafkatest.SessionTimeout(addrs), counting, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	kafkatest.Eventually(t, 60*time.Second, "all transfers applied", func() bool { return applied() >= crashEvents })
	kafkatest.Eventually(t, 30*time.Second, "restart delivers everything", func() bool { return deliveries.Load() >= crashEvents })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var rows, distinct, sum int
	db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM applied").Scan(&rows, &distinct)
	db.QueryRow("SELECT SUM(balance) FROM accounts").Scan(&sum)
	if rows != crashEvents || distinct != crashEvents {
		t.Fatalf("applied rows %d, distinct %d, want %d each", rows, distinct, crashEvents)
	}
	if sum != crashAccounts*crashStart {
		t.Fatalf("sum of balances %d, want %d", sum, crashAccounts*crashStart)
	}
	rs, err := db.Query("SELECT id, balance FROM accounts")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var id string
		var bal int
		rs.Scan(&id, &bal)
		if bal != want[id] {
			t.Errorf("%s balance %d, want %d", id, bal, want[id])
		}
	}
	t.Logf("child applied %d before the kill; the restart delivered %d events (%d duplicates absorbed)",
		before, deliveries.Load(), deliveries.Load()-int64(crashEvents-before))
	if deliveries.Load() < int64(crashEvents) {
		t.Fatalf("restart delivered %d < %d: the crashed process's uncommitted work was not redelivered", deliveries.Load(), crashEvents)
	}
}
