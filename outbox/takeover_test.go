package outbox_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
)

// TestTakeoverRelayHelper is a relay process of TestRelayKilledTakeover:
// relay OUTBOX_RELAY_ID, appending its publishing spans to OUTBOX_SPANS.
func TestTakeoverRelayHelper(t *testing.T) {
	if os.Getenv("OUTBOX_TAKEOVER_HELPER") == "" {
		t.Skip("helper process for TestRelayKilledTakeover")
	}
	db := helperDB(t)
	cfg := relayConfig(t, db, strings.Split(os.Getenv("OUTBOX_BROKERS"), ","))
	cfg.BatchSize = 25 // small rounds, so the kill lands mid-batch
	cfg.ID = os.Getenv("OUTBOX_RELAY_ID")
	r, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outbox.OnStage(r, spanFileHook(t, os.Getenv("OUTBOX_SPANS"), cfg.ID))
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}

// relayProcess is a TestTakeoverRelayHelper process.
type relayProcess struct {
	id     string
	cmd    *exec.Cmd
	out    strings.Builder
	exited chan struct{}
}

// startRelayProcess starts relay id, its spans appended to spanFile.
func startRelayProcess(t *testing.T, b backend, dsn string, addrs []string, id, spanFile string) *relayProcess {
	t.Helper()
	p := &relayProcess{id: id, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestTakeoverRelayHelper$")
	p.cmd.Env = append(os.Environ(), "OUTBOX_CRASH_HELPER=1", "OUTBOX_TAKEOVER_HELPER=1", "OUTBOX_DIALECT="+b.name,
		"OUTBOX_DSN="+dsn, "OUTBOX_BROKERS="+strings.Join(addrs, ","), "OUTBOX_RELAY_ID="+id, "OUTBOX_SPANS="+spanFile)
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
// order per key, and a dedupe consumer handles each once; no two relays
// ever had records of one bucket in flight at once (the killed one's last
// round counts as in flight until it was killed). On Spool and kfake (the
// relays are processes, the broker runs in the test).
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
				spanFile := filepath.Join(t.TempDir(), "spans")
				a := startRelayProcess(t, b, dsn, addrs, "takeover-a", spanFile)
				startRelayProcess(t, b, dsn, addrs, "takeover-b", spanFile)
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
				killed := time.Now().UnixNano()
				kafkatest.Eventually(t, 60*time.Second, "the survivor holding every bucket", func() bool {
					rs := relays()
					return len(rs) == 1 && rs[0].Buckets == outbox.NumBuckets
				})
				<-writing
				waitDrained(t, db, 60*time.Second)
				records := readTopic(t, addrs, "takeover")
				dups := checkDelivery(t, committed, rolledBack, records)
				spans := newSpanLog()
				spans.readFile(t, spanFile)
				spans.kill(a.id, killed)
				nspans, handovers := checkExclusive(t, spans)
				t.Logf("%d events, %d records, %d duplicates; %d publishing spans, %d handovers of a bucket between relays, none overlapping",
					len(committed), len(records), dups, nspans, handovers)
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
