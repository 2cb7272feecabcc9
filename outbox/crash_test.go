package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/dedupe"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/spoolproc"
	"github.com/spoolmq/spool/outbox"
)

// TestCrashRelayHelper is the relay process TestCrash kills. With OUTBOX_CRASH_AT=stage:n it kills
// itself with SIGKILL at the n-th time a round reaches stage (see
// killAt), after writing the rows concerned to OUTBOX_CRASH_REPORT.
func TestCrashRelayHelper(t *testing.T) {
	if os.Getenv("OUTBOX_CRASH_HELPER") == "" {
		t.Skip("helper process for TestCrash")
	}
	db := helperDB(t)
	cfg := crashRelayConfig(t, db, strings.Split(os.Getenv("OUTBOX_BROKERS"), ","))
	r, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if at := os.Getenv("OUTBOX_CRASH_AT"); at != "" {
		killAt(t, r, at, os.Getenv("OUTBOX_CRASH_REPORT"))
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
	// After the broker restarts, look it up again within a round, not
	// after franz-go's default 5s.
	cfg.ClientOptions = append(cfg.ClientOptions, kgo.MetadataMinAge(100*time.Millisecond))
	return cfg
}

// killAt makes r kill its own process with SIGKILL the n-th time one of
// its rounds reaches stage ("stage:n" in at). For StageAck and StageAcked
// only occurrences with a record the broker acknowledged count, so that
// what the kill implies holds whatever the broker did. Before the kill
// the rows of that stage go to the file report, one "id acknowledged"
// line each.
func killAt(t *testing.T, r *outbox.Relay, at, report string) {
	stage, num, _ := strings.Cut(at, ":")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || report == "" {
		t.Fatalf("OUTBOX_CRASH_AT=%q, OUTBOX_CRASH_REPORT=%q: want stage:n (n >= 1) and a file", at, report)
	}
	var seen atomic.Int64
	outbox.OnStage(r, func(s string, rows []outbox.RoundRow) {
		if s != stage || (s == outbox.StageAck || s == outbox.StageAcked) && !anyAcked(rows) {
			return
		}
		if seen.Add(1) != int64(n) {
			return
		}
		var b strings.Builder
		for _, row := range rows {
			fmt.Fprintf(&b, "%d %t\n", row.ID, s != outbox.StageSend && row.Err == nil)
		}
		if err := os.WriteFile(report, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3) // the test sees an exit, not a kill
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // this goroutine goes no further
	})
}

func anyAcked(rows []outbox.RoundRow) bool {
	for _, r := range rows {
		if r.Err == nil {
			return true
		}
	}
	return false
}

// TestCrash: a `spool serve` process and relay processes, killed with
// SIGKILL again and again while writers commit. Each relay is killed at a
// known stage of a round (before it produces, at an acknowledged record,
// with a round acknowledged but not marked, right after marking) or at a
// random time; the broker is killed under a running relay and started
// again on its data directory and address. What each staged kill implies
// is checked (rows acknowledged but not marked are published again: a
// duplicate; marked ones are not). In the end every committed event is in
// the topic, the first copy of each in commit order per key, extra copies
// only of events already there (same ce_id); a consumer agent with a
// dedupe store handles each event exactly once.
func TestCrash(t *testing.T) {
	if os.Getenv("OUTBOX_CRASH_HELPER") != "" {
		t.Skip("in helper process")
	}
	if testing.Short() {
		t.Skip("crash test builds and runs spool serve; skipped with -short")
	}
	spoolproc.Binary(t) // built once, before the timed runs
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { testCrash(t, b) })
	}
}

// crashStages are the stages TestCrash kills relays at, in turn; ""
// is a kill at a random time, with the broker killed meanwhile.
var crashStages = []string{outbox.StageSend, outbox.StageAck, outbox.StageAcked, outbox.StageMarked, ""}

func testCrash(t *testing.T, b backend) {
	brk := spoolproc.Start(t, "--group-initial-rebalance-delay", "0")
	db, dsn := b.open(t)
	migrate(t, db)
	kafkatest.CreateTopic(t, []string{brk.Addr()}, "crash", 4)
	c := &crashRun{t: t, b: b, db: db, dsn: dsn, brk: brk, rng: rand.New(rand.NewPCG(11, 13))}
	t.Cleanup(func() {
		if c.writing != nil {
			<-c.writing // before the database closes
		}
	})

	var kills []*stagedKill
	for cycle := range 2 * len(crashStages) {
		start := time.Now()
		c.startWriters(uint64(cycle))
		stage := crashStages[cycle%len(crashStages)]
		if stage != "" {
			kills = append(kills, c.killAtStage(stage))
		} else {
			c.killRandomly(cycle >= len(crashStages))
			stage = "random time"
		}
		c.joinWriters()
		t.Logf("cycle %d: relay killed at %s after %v", cycle, stage, time.Since(start).Round(time.Millisecond))
	}
	relay := c.startRelay()
	waitDrained(t, db, 90*time.Second)
	relay.kill()

	addrs := []string{brk.Addr()}
	records := readTopic(t, addrs, "crash")
	dups := checkDelivery(t, c.committed, c.rolledBack, records)
	copies := countCopies(records)
	staged := 0
	for _, k := range kills {
		staged += k.check(t, copies)
	}
	t.Logf("%d events committed, %d records in the topic, %d duplicates (%d of them after a kill with acknowledged rows not marked); broker killed %d times",
		len(c.committed), len(records), dups, staged, c.brokerKills)
	consumeOnce(t, addrs, "crash", len(c.committed))
}

// crashRun is the state of one TestCrash run.
type crashRun struct {
	t           *testing.T
	b           backend
	db          *sql.DB
	dsn         string
	brk         *spoolproc.Proc
	rng         *rand.Rand
	brokerKills int

	committed, rolledBack []sent
	writing               chan struct{} // closed when the cycle's writers are done
	written, dropped      []sent        // what they committed and rolled back
	fed                   []sent        // committed by feed after them
}

// startWriters starts writers that commit (and roll back) events while
// the cycle's relay runs.
func (c *crashRun) startWriters(seed uint64) {
	c.writing, c.fed = make(chan struct{}), nil
	go func() {
		defer close(c.writing)
		c.written, c.dropped = writeMany(c.t, c.db, "crash", 40, 4, 12, seed, nil, nil)
	}()
}

// joinWriters waits for the cycle's writers and records what they wrote.
func (c *crashRun) joinWriters() {
	<-c.writing
	c.committed = append(append(c.committed, c.written...), c.fed...)
	c.rolledBack = append(c.rolledBack, c.dropped...)
}

// feed commits one more transaction if the writers are done and nothing
// is pending, so that a relay always has rows to publish.
func (c *crashRun) feed() {
	select {
	case <-c.writing:
	default:
		return
	}
	if pendingRows(c.t, c.db) == 0 {
		k := c.rng.IntN(40)
		c.fed = append(c.fed, addTx(c.t, c.db, "crash", []string{fmt.Sprintf("key-%03d", k), fmt.Sprintf("key-%03d", (k+1)%40)}, true)...)
	}
}

// waitFor polls cond (feeding the relay meanwhile) until it holds; it
// fails the test if relay ends first or past 60s.
func (c *crashRun) waitFor(what string, relay *relayProcess, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ended := closed(relay.exited) // before cond: cond may be that it ended
		if cond() {
			return
		}
		if ended {
			c.t.Fatalf("%s: the relay process ended (%v):\n%s", what, relay.cmd.ProcessState, relay.out.String())
		}
		if time.Now().After(deadline) {
			relay.kill()
			c.t.Fatalf("timed out after 60s waiting for %s; the relay's output:\n%s", what, relay.out.String())
		}
		c.feed()
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// startRelay starts a relay process with extra environment variables.
func (c *crashRun) startRelay(env ...string) *relayProcess {
	c.t.Helper()
	p := &relayProcess{exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashRelayHelper$", "-test.v") // its log as it goes
	p.cmd.Env = append(append(os.Environ(), "OUTBOX_CRASH_HELPER=1", "OUTBOX_DIALECT="+c.b.name, "OUTBOX_DSN="+c.dsn,
		"OUTBOX_BROKERS="+c.brk.Addr()), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	c.t.Cleanup(p.kill)
	return p
}

// killRandomly runs a relay and kills it once it has published a random
// number of rows; meanwhile the broker is killed under it and started
// again, twice. With downUnder, the relay is killed while the broker is
// down.
func (c *crashRun) killRandomly(downUnder bool) {
	c.t.Helper()
	relay := c.startRelay()
	progress := func(what string, n int) {
		c.t.Helper()
		target := publishedRows(c.t, c.db) + n
		c.waitFor(what, relay, func() bool { return publishedRows(c.t, c.db) >= target })
	}
	progress("the relay publishing", 20+c.rng.IntN(40))
	c.brk.Restart() // SIGKILL under the running relay
	c.brokerKills++
	progress("publishing after the broker restart", 10+c.rng.IntN(20))
	c.brk.Kill()
	c.brokerKills++
	if downUnder {
		relay.kill()
		c.brk.Restart()
		return
	}
	c.brk.Restart()
	progress("publishing after the second broker restart", 10+c.rng.IntN(20))
	relay.kill()
}

// stagedKill is what a relay killed at a stage reported and what the
// test saw right after the kill.
type stagedKill struct {
	stage  string
	n      int
	rows   []int64
	acked  map[int64]bool   // acknowledged by the broker (ack, acked, marked)
	ceID   map[int64]string // event_id of each row
	atKill map[string]int   // copies of each row's event in the topic after the kill
}

// killAtStage runs a relay that kills itself at the n-th time it reaches
// stage, and checks the database right after: rows killed before marking
// are pending, marked ones are not; acknowledged ones are in the topic.
func (c *crashRun) killAtStage(stage string) *stagedKill {
	c.t.Helper()
	k := &stagedKill{stage: stage, n: 1 + c.rng.IntN(3), acked: map[int64]bool{}}
	if stage == outbox.StageAck {
		k.n = 1 + c.rng.IntN(40) // a record mid-round, most times
	}
	report := filepath.Join(c.t.TempDir(), "report")
	relay := c.startRelay(fmt.Sprintf("OUTBOX_CRASH_AT=%s:%d", stage, k.n), "OUTBOX_CRASH_REPORT="+report)
	what := fmt.Sprintf("the relay to kill itself at %s #%d", stage, k.n)
	c.waitFor(what, relay, func() bool { return closed(relay.exited) })
	if ws, ok := relay.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		c.t.Fatalf("%s: it ended with %v:\n%s", what, relay.cmd.ProcessState, relay.out.String())
	}
	k.read(c.t, report)
	pending := k.lookUp(c.t, c.db)
	for _, id := range k.rows {
		if want := stage != outbox.StageMarked; pending[id] != want {
			c.t.Fatalf("killed at %s #%d: row %d pending %t, want %t", stage, k.n, id, pending[id], want)
		}
	}
	k.atKill = countCopies(readTopic(c.t, []string{c.brk.Addr()}, "crash"))
	for id := range k.acked {
		if k.atKill[k.ceID[id]] == 0 {
			c.t.Fatalf("killed at %s #%d: row %d was acknowledged but its event %s is not in the topic", stage, k.n, id, k.ceID[id])
		}
	}
	return k
}

// read parses a relay's report.
func (k *stagedKill) read(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("killed at %s #%d: no report: %v", k.stage, k.n, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var id int64
		var acked bool
		if _, err := fmt.Sscanf(line, "%d %t", &id, &acked); err != nil {
			t.Fatalf("report line %q: %v", line, err)
		}
		k.rows = append(k.rows, id)
		if acked {
			k.acked[id] = true
		}
	}
	if len(k.rows) == 0 || k.stage != outbox.StageSend && len(k.acked) == 0 {
		t.Fatalf("killed at %s #%d: report of %d rows, %d acknowledged", k.stage, k.n, len(k.rows), len(k.acked))
	}
}

// lookUp reads the event ids of k's rows and which of them are pending.
func (k *stagedKill) lookUp(t *testing.T, db *sql.DB) map[int64]bool {
	t.Helper()
	ids := make([]string, len(k.rows))
	for i, id := range k.rows {
		ids[i] = strconv.FormatInt(id, 10)
	}
	rs, err := db.Query(`SELECT o.id, o.event_id, CASE WHEN EXISTS (SELECT 1 FROM spool_outbox_pending q WHERE q.id = o.id) THEN 1 ELSE 0 END
FROM spool_outbox o WHERE o.id IN (` + strings.Join(ids, ",") + `)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	k.ceID = map[int64]string{}
	pending := map[int64]bool{}
	for rs.Next() {
		var id int64
		var ce string
		var p int
		if err := rs.Scan(&id, &ce, &p); err != nil {
			t.Fatal(err)
		}
		k.ceID[id], pending[id] = ce, p == 1
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if len(k.ceID) != len(k.rows) {
		t.Fatalf("killed at %s #%d: %d of the %d reported rows are in the outbox", k.stage, k.n, len(k.ceID), len(k.rows))
	}
	return pending
}

// check compares the final copies of k's events with those after the
// kill: a row left pending was published again (so an acknowledged one
// now has a duplicate), a marked one was not. It returns the duplicates
// the kill made.
func (k *stagedKill) check(t *testing.T, copies map[string]int) (dups int) {
	t.Helper()
	for _, id := range k.rows {
		ce := k.ceID[id]
		before, after := k.atKill[ce], copies[ce]
		switch {
		case k.stage == outbox.StageMarked && after != before:
			t.Errorf("killed at %s #%d: row %d was marked published, yet %d copies of %s after the next relays, %d at the kill", k.stage, k.n, id, after, ce, before)
		case k.stage != outbox.StageMarked && after <= before:
			t.Errorf("killed at %s #%d: row %d was pending, yet not published again (%d copies of %s, %d at the kill)", k.stage, k.n, id, after, ce, before)
		case k.stage != outbox.StageMarked && k.acked[id]:
			dups++
		}
	}
	return dups
}

// countCopies counts the records of each event id.
func countCopies(records []got) map[string]int {
	n := map[string]int{}
	for _, r := range records {
		n[r.id]++
	}
	return n
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
