package outbox_test

import (
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

// relayProcess is a TestCrashRelayHelper process.
type relayProcess struct {
	cmd    *exec.Cmd
	out    strings.Builder
	exited chan struct{}
}

func startRelayProcess(t *testing.T, b backend, dsn string, addrs []string) *relayProcess {
	t.Helper()
	p := &relayProcess{exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashRelayHelper$")
	p.cmd.Env = append(os.Environ(), "OUTBOX_CRASH_HELPER=1", "OUTBOX_DIALECT="+b.name, "OUTBOX_DSN="+dsn,
		"OUTBOX_BROKERS="+strings.Join(addrs, ","))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL and waits for the process to end.
func (p *relayProcess) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// TestRelayKilledTakeover: two relay processes share the outbox while
// writers commit; one is killed with SIGKILL (its leases are not
// released) and the other takes over all its buckets once they expire.
// Every committed event is published, the first copy of each in commit
// order per key, and a dedupe consumer handles each once. On Spool and
// kfake (the relays are processes, the broker runs in the test).
func TestRelayKilledTakeover(t *testing.T) {
	if os.Getenv("OUTBOX_CRASH_HELPER") != "" {
		t.Skip("in helper process")
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			kafkatest.Run(t, func(t *testing.T, addrs []string) {
				db, dsn := b.open(t)
				migrate(t, db)
				kafkatest.CreateTopic(t, addrs, "takeover", 4)
				relays := func() []outbox.RelayLease {
					st, err := outbox.ReadStatus(t.Context(), db)
					if err != nil {
						t.Fatal(err)
					}
					return st.Relays
				}
				a := startRelayProcess(t, b, dsn, addrs)
				startRelayProcess(t, b, dsn, addrs)
				kafkatest.Eventually(t, 30*time.Second, "both relays holding buckets", func() bool {
					rs := relays()
					return len(rs) == 2 && rs[0].Buckets > 0 && rs[1].Buckets > 0
				})

				writing := make(chan struct{})
				var committed, rolledBack []sent
				go func() {
					defer close(writing)
					committed, rolledBack = writeMany(t, db, "takeover", 40, 4, 60, 17, nil, nil)
				}()
				t.Cleanup(func() { <-writing })
				kafkatest.Eventually(t, 60*time.Second, "rows published by both relays", func() bool {
					return publishedRows(t, db) >= 100
				})
				a.kill()
				kafkatest.Eventually(t, 60*time.Second, "the survivor holding every bucket", func() bool {
					rs := relays()
					return len(rs) == 1 && rs[0].Buckets == outbox.NumBuckets
				})
				<-writing
				waitDrained(t, db, 60*time.Second)
				records := readTopic(t, addrs, "takeover")
				dups := checkDelivery(t, committed, rolledBack, records)
				t.Logf("%d events, %d records, %d duplicates", len(committed), len(records), dups)
				consumeOnce(t, addrs, "takeover", len(committed))
			})
		})
	}
}

// publishedRows counts rows published (no longer pending).
func publishedRows(t testing.TB, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM spool_outbox o WHERE NOT EXISTS (SELECT 1 FROM spool_outbox_pending q WHERE q.id = o.id)").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
