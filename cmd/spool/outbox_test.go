package main

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

// TestOutboxCLI: schema, migrate, relay, status, requeue and discard on a
// SQLite outbox, against Spool and kfake (auto-creation off, so a row for
// an unknown topic is rejected and shown by status).
func TestOutboxCLI(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		path := filepath.Join(t.TempDir(), "app.db")
		dbURL := "sqlite:" + path

		out := mustRun(t, addr, "", "outbox", "schema", "--dialect", "postgres")
		wantContains(t, "schema", out, "CREATE TABLE spool_outbox (", "pg_advisory_xact_lock", "INSERT INTO spool_outbox_schema (version) VALUES (1)",
			"CREATE TABLE spool_outbox_pending (", "INSERT INTO spool_outbox_schema (version) VALUES (2)")
		mustFail(t, addr, "", []string{"outbox", "schema", "--dialect", "oracle"}, "unknown dialect")
		mustFail(t, addr, "", []string{"outbox", "status"}, "no database", "--db")
		for _, bad := range [][]string{{"outbox", "schema", "--dialect", "oracle"}, {"outbox", "status"},
			{"outbox", "status", "--db", "mysql://x"}, {"outbox", "requeue", "--db", dbURL}} {
			if r := run(t, addr, "", bad...); exitCode(r.err) != 2 {
				t.Fatalf("spool %v: exit code %d (%v), want 2 for bad input", bad, exitCode(r.err), r.err)
			}
		}
		mustFail(t, addr, "", []string{"outbox", "status", "--db", dbURL}, "Migrate")
		wantContains(t, "migrate", mustRun(t, addr, "", "outbox", "migrate", "--db", dbURL), "schema version 2")

		mustRun(t, addr, "", "topic", "create", "orders", "-p", "2")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		defer db.Close()
		ctx := context.Background()
		tx, _ := db.BeginTx(ctx, nil)
		for i, topic := range []string{"orders", "orders", "nope", "orders"} {
			ev, _ := event.New("order.placed", event.JSON, i)
			ev.Source, ev.Key = "/cli-test", []byte("c"+strconv.Itoa(i%2))
			if err := outbox.Add(ctx, tx, *ev, outbox.Topic(topic)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}

		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		var rout, rerr bytes.Buffer
		go func() {
			root := newRootCmd()
			root.SetOut(&rout)
			root.SetErr(&rerr)
			root.SetArgs([]string{"outbox", "relay", "--db", dbURL, "--brokers", addr, "--poll", "20ms", "--lease-ttl", "3s", "--publish-timeout", "1s"})
			done <- root.ExecuteContext(rctx)
		}()
		kafkatest.Eventually(t, 30*time.Second, "3 rows published, 1 rejected", func() bool {
			var pub, rej int
			db.QueryRow("SELECT (SELECT COUNT(*) FROM spool_outbox) - (SELECT COUNT(*) FROM spool_outbox_pending), (SELECT COUNT(rejected_at) FROM spool_outbox)").Scan(&pub, &rej)
			return pub == 3 && rej == 1
		})
		status := mustRun(t, addr, "", "outbox", "status", "--db", dbURL)
		wantContains(t, "status", status, "nope", "rejected", "UNKNOWN_TOPIC_OR_PARTITION", "STUCK KEYS", "RELAYS")
		mustFail(t, addr, "", []string{"outbox", "requeue", "--db", dbURL}, "--id", "--all")
		var id int64
		if err := db.QueryRow("SELECT id FROM spool_outbox WHERE rejected_at IS NOT NULL").Scan(&id); err != nil {
			t.Fatal(err)
		}
		mustFail(t, addr, "", []string{"outbox", "discard", "--db", dbURL, "--id", "999"}, "no rejected row")
		wantContains(t, "discard", mustRun(t, addr, "", "outbox", "discard", "--db", dbURL, "--id", strconv.FormatInt(id, 10)), "discarded 1")
		wantContains(t, "status after discard", mustRun(t, addr, "", "outbox", "status", "--db", dbURL), "(nothing pending)")
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("relay: %v\n%s", err, rerr.String())
		}
		wantContains(t, "relay output", rout.String(), "outbox relay publishing spool_outbox")
		if n := len(kafkatest.ReadAll(t, []string{addr}, "orders")); n != 3 {
			t.Fatalf("orders has %d records, want 3", n)
		}
		if !strings.Contains(rerr.String(), "rejected for good") {
			t.Fatalf("relay log does not report the rejected row:\n%s", rerr.String())
		}
	})
}

// TestRelayPool: the relay's PostgreSQL pool keeps relayPGConns
// connections, idle ones included, so that its concurrent users (LISTEN,
// rounds, marker, read-ahead, janitor) do not reopen connections between
// uses; on SQLite it is one connection.
func TestRelayPool(t *testing.T) {
	for _, c := range []struct {
		sqlite bool
		want   int
	}{{false, relayPGConns}, {true, 1}} {
		d := &countingDriver{}
		db := sql.OpenDB(d)
		relayPool(db, c.sqlite)
		for range 3 { // take every connection at once, give them back, again
			var conns []*sql.Conn
			for range c.want {
				conn, err := db.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, conn)
			}
			for _, conn := range conns {
				conn.Close()
			}
		}
		if got := db.Stats().MaxOpenConnections; got != c.want {
			t.Errorf("sqlite=%v: MaxOpenConnections %d, want %d", c.sqlite, got, c.want)
		}
		if got := d.opened.Load(); got != int64(c.want) {
			t.Errorf("sqlite=%v: %d connections opened over 3 uses of %d at once, want %d (idle ones kept)", c.sqlite, got, c.want, c.want)
		}
		db.Close()
	}
}

// countingDriver is a database/sql driver whose connections do nothing
// but count how many were opened.
type countingDriver struct{ opened atomic.Int64 }

func (d *countingDriver) Connect(context.Context) (driver.Conn, error) {
	d.opened.Add(1)
	return countingConn{}, nil
}

func (d *countingDriver) Driver() driver.Driver { return nil }

type countingConn struct{}

func (countingConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("countingConn: no statements")
}
func (countingConn) Close() error { return nil }
func (countingConn) Begin() (driver.Tx, error) {
	return nil, errors.New("countingConn: no transactions")
}
