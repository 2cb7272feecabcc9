package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/dedupe"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
	"github.com/spoolmq/spool/spooltest"
)

// TestCrashRelayHelper is the relay process TestCrash kills.
func TestCrashRelayHelper(t *testing.T) {
	if os.Getenv("OUTBOX_CRASH_HELPER") == "" {
		t.Skip("helper process for TestCrash")
	}
	var db *sql.DB
	if os.Getenv("OUTBOX_DIALECT") == "sqlite" {
		db = openSQLite(t, os.Getenv("OUTBOX_DSN"))
	} else {
		db = openPG(t, os.Getenv("OUTBOX_DSN"))
	}
	cfg := crashRelayConfig(t, db, strings.Split(os.Getenv("OUTBOX_BROKERS"), ","))
	r, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}

// crashRelayConfig: small rounds, so a kill lands mid-batch; short leases,
// so the next relay takes over quickly.
func crashRelayConfig(t testing.TB, db *sql.DB, addrs []string) outbox.Config {
	cfg := relayConfig(t, db, addrs)
	cfg.BatchSize = 25
	cfg.LeaseTTL, cfg.PublishTimeout = 3*time.Second, time.Second
	return cfg
}

// TestCrash: while writers commit events, a relay process is killed with
// SIGKILL mid-batch and replaced, again and again, and the broker is
// restarted under it every other time. In the end every committed event is
// in the topic, the first copy of each in commit order per key, extra
// copies only of events already there (same ce_id); a consumer agent with
// a dedupe store handles each event exactly once.
func TestCrash(t *testing.T) {
	if os.Getenv("OUTBOX_CRASH_HELPER") != "" {
		t.Skip("in helper process")
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { testCrash(t, b) })
	}
}

func testCrash(t *testing.T, b backend) {
	srv := spooltest.Start(t, spooltest.WithPartitions(4))
	db, dsn := b.open(t)
	migrate(t, db)
	kafkatest.CreateTopic(t, []string{srv.Addr()}, "crash", 4)

	published := func() (n int) {
		if err := db.QueryRow("SELECT COUNT(*) FROM spool_outbox o WHERE NOT EXISTS (SELECT 1 FROM spool_outbox_pending q WHERE q.id = o.id)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var helper *exec.Cmd
	var exited chan struct{}
	var out strings.Builder
	startHelper := func() {
		helper = exec.Command(os.Args[0], "-test.run=^TestCrashRelayHelper$")
		helper.Env = append(os.Environ(), "OUTBOX_CRASH_HELPER=1", "OUTBOX_DIALECT="+b.name, "OUTBOX_DSN="+dsn,
			"OUTBOX_BROKERS="+srv.Addr())
		out.Reset()
		helper.Stdout, helper.Stderr = &out, &out
		if err := helper.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan struct{})
		go func(c *exec.Cmd, ch chan struct{}) { c.Wait(); close(ch) }(helper, exited)
	}
	kill := func() {
		helper.Process.Kill() // SIGKILL
		<-exited
	}
	t.Cleanup(func() {
		if helper != nil && helper.ProcessState == nil {
			kill()
		}
	})

	// Writers commit for the whole run.
	var committed, rolledBack []sent
	writing, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(writing)
		committed, rolledBack = writeMany(t, db, "crash", 40, 4, 150, 3, nil, stop)
	}()
	t.Cleanup(func() { close(stop); <-writing })

	rng := rand.New(rand.NewPCG(11, 13))
	for round := range 5 {
		startHelper()
		start := published()
		target := start + 40 + rng.IntN(60)
		kafkatest.Eventually(t, 60*time.Second, fmt.Sprintf("round %d: the relay publishes", round), func() bool {
			select {
			case <-exited:
				t.Fatalf("relay process exited early:\n%s", out.String())
			default:
			}
			return published() >= target
		})
		if round%2 == 1 {
			// The broker restarts under the running relay.
			old := srv.Addr()
			srv.Restart(t)
			if srv.Addr() != old {
				kill()
				startHelper()
			}
			target = published() + 20
			kafkatest.Eventually(t, 60*time.Second, "publishing after the broker restart", func() bool { return published() >= target })
		}
		kill()
	}
	<-writing
	startHelper()
	waitDrained(t, db, 90*time.Second)
	kill()

	addrs := []string{srv.Addr()}
	records := readTopic(t, addrs, "crash")
	dups := checkDelivery(t, committed, rolledBack, records)
	t.Logf("%d events committed, %d records in the topic, %d duplicates", len(committed), len(records), dups)
	consumeOnce(t, addrs, "crash", len(committed))
}

// consumeOnce runs an agent with a dedupe store over topic and asserts it
// handles every event exactly once.
func consumeOnce(t *testing.T, addrs []string, topic string, events int) {
	var mu sync.Mutex
	handled := map[string]int{}
	h := dedupe.Wrap(dedupe.NewMemory(100000, 0), func(_ context.Context, m *agent.Message) error {
		mu.Lock()
		handled[m.ID]++
		mu.Unlock()
		return nil
	})
	a, err := agent.New("crash-check", []string{topic}, agent.WithBrokers(addrs...),
		agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		agent.WithConcurrency(1), agent.WithHandler("test.happened", h))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	kafkatest.Eventually(t, 60*time.Second, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == events
	})
	if st := a.Stats(); st.Succeeded < int64(events) {
		t.Logf("agent stats %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for id, n := range handled {
		if n != 1 {
			t.Fatalf("event %s handled %d times through dedupe", id, n)
		}
	}
}
