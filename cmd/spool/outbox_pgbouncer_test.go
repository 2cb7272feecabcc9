package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/pgtest"
	"github.com/spoolmq/spool/outbox"
)

// TestOutboxCLIPgBouncer: migrate, relay --no-listen and status with a
// postgres:// URL through PgBouncer in transaction mode (with
// default_query_exec_mode=exec), against Spool and kfake: the committed
// events are published in commit order per key, the rolled-back one is
// not, and the relay logs no LISTEN trouble.
func TestOutboxCLIPgBouncer(t *testing.T) {
	srv := pgtest.Start(t)
	direct, err := sql.Open("pgx", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	bouncer, err := pgconn.ParseConfig(pgtest.StartPgBouncer(t, srv, pgtest.Transaction))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	eachCluster(t, func(t *testing.T, addr string) {
		n++
		name := fmt.Sprintf("cli_%d", n)
		if _, err := direct.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&default_query_exec_mode=exec", bouncer.Port, name)
		wantContains(t, "migrate", mustRun(t, addr, "", "outbox", "migrate", "--db", dbURL), "schema version 2")
		mustRun(t, addr, "", "topic", "create", "orders", "-p", "2")

		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		want := map[string][]string{}
		var rolledBack string
		for i := range 10 {
			ctx := context.Background()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for j := range 2 {
				ev, _ := event.New("order.placed", event.JSON, i)
				ev.Source, ev.Key = "/cli-test", []byte(fmt.Sprint("c", (i+j)%3))
				if err := outbox.Add(ctx, tx, *ev, outbox.Topic("orders")); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, string(ev.Key), ev.ID)
			}
			if i == 4 {
				rolledBack = ids[1]
				tx.Rollback()
				continue
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			for k := 0; k < len(ids); k += 2 {
				want[ids[k]] = append(want[ids[k]], ids[k+1])
			}
		}

		rctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		var rout, rerr bytes.Buffer
		go func() {
			root := newRootCmd()
			root.SetOut(&rout)
			root.SetErr(&rerr)
			root.SetArgs([]string{"outbox", "relay", "--db", dbURL, "--brokers", addr, "--no-listen",
				"--poll", "20ms", "--lease-ttl", "3s", "--publish-timeout", "1s"})
			done <- root.ExecuteContext(rctx)
		}()
		kafkatest.Eventually(t, 30*time.Second, "every row published", func() bool {
			var pending int
			db.QueryRow("SELECT COUNT(*) FROM spool_outbox_pending").Scan(&pending)
			return pending == 0
		})
		wantContains(t, "status", mustRun(t, addr, "", "outbox", "status", "--db", dbURL), "(nothing pending)")
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("relay: %v\n%s", err, rerr.String())
		}
		if strings.Contains(rerr.String(), "LISTEN") {
			t.Fatalf("relay with --no-listen logged about LISTEN:\n%s", rerr.String())
		}
		got := map[string][]string{}
		for _, r := range kafkatest.ReadAll(t, []string{addr}, "orders") {
			ev, err := event.FromRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID == rolledBack {
				t.Fatalf("rolled-back event %s published", ev.ID)
			}
			got[string(r.Key)] = append(got[string(r.Key)], ev.ID)
		}
		for k, w := range want {
			if !slices.Equal(got[k], w) {
				t.Fatalf("key %s: published %v, committed %v", k, got[k], w)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("published keys %d, committed %d", len(got), len(want))
		}
	})
}
