package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/outbox"
	"github.com/spoolmq/spool/producer"
	"github.com/spoolmq/spool/spooltest"
)

// benchEvent is a 1 KiB event of key k.
func benchEvent(b testing.TB, k int) event.Event {
	ev, err := event.New("bench.happened", event.Raw, strings.Repeat("x", 1024))
	if err != nil {
		b.Fatal(err)
	}
	ev.Source, ev.Key = "/bench", []byte(fmt.Sprintf("key-%04d", k%1000))
	return *ev
}

// fill commits n 1 KiB events in transactions of 100.
func fill(b testing.TB, db *sql.DB, topic string, n int) {
	ctx := context.Background()
	for done := 0; done < n; {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 100 && done < n; i++ {
			if err := outbox.Add(ctx, tx, benchEvent(b, done), outbox.Topic(topic)); err != nil {
				b.Fatal(err)
			}
			done++
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelay measures how fast one relay drains a backlog of b.N
// committed 1 KiB events into an in-process Spool broker (fsync=always),
// from PostgreSQL (internal/pgtest: fsync off) and from SQLite (WAL,
// synchronous=NORMAL). baseline=producer publishes the same events with
// the producer package straight to the same kind of broker: the ceiling.
//
//	go test ./outbox -run '^$' -bench 'BenchmarkRelay$' -benchtime 50000x
func BenchmarkRelay(b *testing.B) {
	b.Run("baseline=producer", func(b *testing.B) {
		srv := spooltest.Start(b, spooltest.WithPartitions(8))
		kafkatest.CreateTopic(b, []string{srv.Addr()}, "bench", 8)
		p, err := producer.New(producer.WithBrokers(srv.Addr()), producer.WithSource("/bench"))
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		evs := make([]event.Event, b.N)
		for i := range evs {
			evs[i] = benchEvent(b, i)
		}
		ctx := context.Background()
		b.SetBytes(1024)
		cpu := newCPUMeter(b, nil, false)
		b.ResetTimer()
		cpu.start()
		start := time.Now()
		for i := range evs {
			p.PublishAsync(ctx, "bench", &evs[i], func(_ producer.Result, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		cpu.report(b, b.N)
	})
	for _, c := range benchCases(b) {
		b.Run(c.name, func(b *testing.B) {
			be := c.be
			db, srv := c.setup(b)
			fill(b, db, "bench", b.N)
			b.SetBytes(1024)
			cpu := newCPUMeter(b, db, be.dialect == outbox.Postgres)
			b.ResetTimer()
			cpu.start()
			start := time.Now()
			cfg := outbox.Config{DB: db, Brokers: []string{srv.Addr()}, PollInterval: 5 * time.Millisecond}
			r, err := outbox.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			for r.Stats().Published < int64(b.N) {
				time.Sleep(time.Millisecond) // benchmark: polling the counter, not synchronising a test
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			cpu.report(b, b.N)
		})
	}
}

// benchSetup opens a migrated database of be and starts a broker with an
// 8-partition topic "bench".
func benchSetup(b *testing.B, be backend) (*sql.DB, *spooltest.Server) {
	db, _ := be.open(b)
	migrate(b, db)
	srv := spooltest.Start(b, spooltest.WithPartitions(8))
	kafkatest.CreateTopic(b, []string{srv.Addr()}, "bench", 8)
	return db, srv
}

// benchCase is a database a relay benchmark runs on.
type benchCase struct {
	name string
	be   backend
	// sqlDefault: the PostgreSQL handle keeps database/sql's default pool
	// (unlimited open connections, 2 idle) instead of openPG's.
	sqlDefault bool
}

// benchCases are SQLite, PostgreSQL with openPG's pool, and PostgreSQL
// with database/sql's default pool (the benchmarks' pool before
// 2026-12-02: with more concurrent users than 2, nearly every
// transaction opened a connection, a server backend fork).
func benchCases(b *testing.B) []benchCase {
	var cs []benchCase
	for _, be := range backends(b) {
		if be.dialect != outbox.Postgres {
			cs = append(cs, benchCase{name: "db=" + be.name, be: be})
			continue
		}
		cs = append(cs, benchCase{name: "db=postgres/pool=sql-default", be: be, sqlDefault: true},
			benchCase{name: fmt.Sprintf("db=postgres/pool=%d", pgConns), be: be})
	}
	return cs
}

// setup is benchSetup with the case's pool.
func (c benchCase) setup(b *testing.B) (*sql.DB, *spooltest.Server) {
	db, srv := benchSetup(b, c.be)
	if c.sqlDefault {
		db.SetMaxOpenConns(0)
		db.SetMaxIdleConns(2) // database/sql's defaultMaxIdleConns
	}
	return db, srv
}

// latencyHooks records commit-to-ack latencies.
type latencyHooks struct {
	outbox.NopHooks
	mu sync.Mutex
	ds []time.Duration
}

func (h *latencyHooks) Published(_ string, d time.Duration) {
	h.mu.Lock()
	h.ds = append(h.ds, d)
	h.mu.Unlock()
}

// BenchmarkRelayLatency commits b.N 1 KiB events at 5,000 events/s (64
// writers, each committing a transaction of 5 events every 64 ms) while a
// relay publishes them to an in-process Spool broker, and reports:
//
//   - commit-ack-*-ms: commit to ack, from the writer's COMMIT returning to
//     the broker's acknowledgement reaching the relay (StageAck), per event;
//   - p50/p99/max-ms: Add to ack (the Published hook; created_at has
//     millisecond resolution), which adds the writer's transaction;
//   - tx-*-ms: the writers' transactions, BEGIN to the end of COMMIT;
//   - written/s: the rate the writers reached, events/s: the rate
//     published (both over the run, the relay's drain included for the
//     latter).
//
// A transaction is 7 round trips (BEGIN, 5 INSERTs, COMMIT): 64 writers
// leave each 64 ms for them. PostgreSQL runs with openPG's pool and, at
// 5,000/s, also with database/sql's default one (2 idle connections),
// with the writers alone (relay=none), and with 16 writers (16 ms each).
// The same runs at 1,000 events/s show the relay's share when the
// database is not saturated.
//
//	go test ./outbox -run '^$' -bench BenchmarkRelayLatency -benchtime 25000x
func BenchmarkRelayLatency(b *testing.B) {
	for _, rate := range []int{5000, 1000} {
		benchRelayLatency(b, rate)
	}
}

// benchRelayLatency runs BenchmarkRelayLatency's cases at rate events/s.
func benchRelayLatency(b *testing.B, rate int) {
	const writers, perTx = 64, 5
	interval := time.Duration(float64(time.Second) * writers * perTx / float64(rate))
	b.Run(fmt.Sprintf("baseline=producer/rate=%d", rate), func(b *testing.B) {
		// The same rate published straight to the same kind of broker with
		// Publish (acks=all): the broker's and the machine's share.
		srv := spooltest.Start(b, spooltest.WithPartitions(8))
		kafkatest.CreateTopic(b, []string{srv.Addr()}, "bench", 8)
		p, err := producer.New(producer.WithBrokers(srv.Addr()), producer.WithSource("/bench"))
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		var mu sync.Mutex
		var ds []time.Duration
		b.ResetTimer()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stagger(w, writers, interval)
				tick := time.NewTicker(interval)
				defer tick.Stop()
				for i := w * perTx; i < b.N; i += writers * perTx {
					<-tick.C
					for j := 0; j < perTx && i+j < b.N; j++ {
						ev := benchEvent(b, i+j)
						start := time.Now()
						p.PublishAsync(context.Background(), "bench", &ev, func(_ producer.Result, err error) {
							if err != nil {
								b.Error(err)
							}
							mu.Lock()
							ds = append(ds, time.Since(start))
							mu.Unlock()
						})
					}
				}
			}()
		}
		wg.Wait()
		if err := p.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		reportPercentiles(b, ds)
	})
	for _, c := range benchCases(b) {
		if c.sqlDefault && rate != 5000 {
			continue // the pool's cost shows at the target rate
		}
		w := latencyWriters{n: writers, perTx: perTx, interval: interval}
		b.Run(fmt.Sprintf("%s/rate=%d", c.name, rate), func(b *testing.B) { benchRelayLatencyDB(b, c, w) })
		if c.be.dialect != outbox.Postgres || c.sqlDefault || rate != 5000 {
			continue
		}
		// The writers alone: the database's share of the CPU.
		b.Run(fmt.Sprintf("%s/relay=none/rate=%d", c.name, rate), func(b *testing.B) { benchWritersOnly(b, c, w) })
		// The same rate from 16 writers: fewer transactions in flight at
		// once on the server, each of them shorter.
		w16 := latencyWriters{n: 16, perTx: perTx, interval: interval * 16 / writers}
		b.Run(fmt.Sprintf("%s/writers=16/rate=%d", c.name, rate), func(b *testing.B) { benchRelayLatencyDB(b, c, w16) })
	}
}

// benchRelayLatencyDB is one database case of BenchmarkRelayLatency: the
// writers commit while a relay publishes.
func benchRelayLatencyDB(b *testing.B, c benchCase, w latencyWriters) {
	db, srv := c.setup(b)
	h := &latencyHooks{}
	ca := newCommitAcks(b.N)
	cfg := outbox.Config{DB: db, Brokers: []string{srv.Addr()}, Hooks: h, PollInterval: 5 * time.Millisecond}
	r, err := outbox.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	outbox.OnStage(r, ca.onStage)
	if err := r.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	cpu := newCPUMeter(b, db, c.be.dialect == outbox.Postgres)
	st0 := db.Stats()
	b.ResetTimer()
	cpu.start()
	txs, written := w.run(b, db, func(ids []string, at time.Time) {
		ca.committed(ids, at)
		if c.be.dialect == outbox.SQLite {
			r.Wake() // in-process: no NOTIFY on SQLite
		}
	})
	for r.Stats().Published < int64(b.N) {
		time.Sleep(time.Millisecond) // benchmark: polling the counter, not synchronising a test
	}
	b.StopTimer()
	cpu.report(b, b.N)
	reportConns(b, st0, db.Stats())
	h.mu.Lock()
	ds := slices.Clone(h.ds)
	h.mu.Unlock()
	reportPercentiles(b, ds)
	// Commit to ack, the measure: from the writer's COMMIT
	// returning to the broker's acknowledgement reaching the relay.
	cas := ca.latencies(b, db)
	slices.Sort(cas)
	b.ReportMetric(pctMs(cas, 0.5), "commit-ack-p50-ms")
	b.ReportMetric(pctMs(cas, 0.99), "commit-ack-p99-ms")
	b.ReportMetric(pctMs(cas, 1), "commit-ack-max-ms")
	b.ReportMetric(float64(b.N)/float64(ca.rounds.Load()), "rows/round")
	reportWriters(b, txs, written)
}

// benchWritersOnly runs the writers of BenchmarkRelayLatency with no relay.
func benchWritersOnly(b *testing.B, c benchCase, w latencyWriters) {
	db, _ := c.setup(b)
	cpu := newCPUMeter(b, db, c.be.dialect == outbox.Postgres)
	st0 := db.Stats()
	b.ResetTimer()
	cpu.start()
	txs, written := w.run(b, db, func([]string, time.Time) {})
	b.StopTimer()
	cpu.report(b, b.N)
	reportConns(b, st0, db.Stats())
	reportWriters(b, txs, written)
}

// latencyWriters are BenchmarkRelayLatency's writers: n goroutines, each
// committing a transaction of perTx events every interval.
type latencyWriters struct {
	n, perTx int
	interval time.Duration
}

// run commits b.N events and calls committed with each transaction's
// ce_ids once its COMMIT has returned. It returns the transactions'
// durations (BEGIN to the end of COMMIT) and the time it took.
func (w latencyWriters) run(b *testing.B, db *sql.DB, committed func(ids []string, at time.Time)) ([]time.Duration, time.Duration) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var txs []time.Duration
	start := time.Now()
	for g := range w.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stagger(g, w.n, w.interval)
			tick := time.NewTicker(w.interval)
			defer tick.Stop()
			for i := g * w.perTx; i < b.N; i += w.n * w.perTx {
				<-tick.C
				begin := time.Now()
				ids, err := w.tx(b, db, i, min(w.perTx, b.N-i))
				if err != nil {
					b.Error(err)
					return
				}
				end := time.Now()
				committed(ids, end)
				mu.Lock()
				txs = append(txs, end.Sub(begin))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return txs, time.Since(start)
}

// stagger delays writer g of n by g/n of the interval, so that n writers
// ticking every interval spread their transactions evenly over it instead
// of starting them all at once (bursts of n every interval).
func stagger(g, n int, interval time.Duration) {
	time.Sleep(time.Duration(g) * interval / time.Duration(n)) // pacing the load, not synchronising
}

// tx commits events first .. first+n-1 in one transaction.
func (w latencyWriters) tx(b testing.TB, db *sql.DB, first, n int) ([]string, error) {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, n)
	for j := range n {
		ev := benchEvent(b, first+j)
		if err := outbox.Add(ctx, tx, ev, outbox.Topic("bench")); err != nil {
			tx.Rollback()
			return nil, err
		}
		ids = append(ids, ev.ID)
	}
	return ids, tx.Commit()
}

// reportConns reports the connections a handle opened between two of its
// stats: those still open, and those closed for want of an idle slot.
func reportConns(b *testing.B, from, to sql.DBStats) {
	opened := to.OpenConnections - from.OpenConnections + int(to.MaxIdleClosed-from.MaxIdleClosed)
	b.ReportMetric(float64(opened), "conns-opened")
}

// reportWriters reports the writers' transactions (part of the latency
// from Add: the database's share) and the rate they reached.
func reportWriters(b *testing.B, txs []time.Duration, written time.Duration) {
	slices.Sort(txs)
	b.ReportMetric(pctMs(txs, 0.5), "tx-p50-ms")
	b.ReportMetric(pctMs(txs, 0.99), "tx-p99-ms")
	b.ReportMetric(float64(b.N)/written.Seconds(), "written/s")
}

// commitAcks pairs each event's commit, as its writer saw COMMIT return,
// with the broker's acknowledgement of its record, as the relay's StageAck
// hook saw it.
type commitAcks struct {
	mu     sync.Mutex
	commit map[string]time.Time // by ce_id
	ack    map[int64]time.Time  // by row id: the first successful ack
	rounds atomic.Int64         // rounds sent
}

func newCommitAcks(n int) *commitAcks {
	return &commitAcks{commit: make(map[string]time.Time, n), ack: make(map[int64]time.Time, n)}
}

func (c *commitAcks) committed(ids []string, at time.Time) {
	c.mu.Lock()
	for _, id := range ids {
		c.commit[id] = at
	}
	c.mu.Unlock()
}

func (c *commitAcks) onStage(stage string, rows []outbox.RoundRow) {
	if stage == outbox.StageSend {
		c.rounds.Add(1)
	}
	if stage != outbox.StageAck {
		return
	}
	now := time.Now()
	c.mu.Lock()
	for _, r := range rows {
		if _, ok := c.ack[r.ID]; !ok && r.Err == nil {
			c.ack[r.ID] = now
		}
	}
	c.mu.Unlock()
}

// latencies joins acks to commits through the outbox table (row id to
// ce_id); every committed event must have both.
func (c *commitAcks) latencies(b *testing.B, db *sql.DB) []time.Duration {
	rows, err := db.Query("SELECT id, event_id FROM " + outbox.DefaultTable)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	ds := make([]time.Duration, 0, len(c.commit))
	for rows.Next() {
		var id int64
		var ceID string
		if err := rows.Scan(&id, &ceID); err != nil {
			b.Fatal(err)
		}
		ack, okA := c.ack[id]
		commit, okC := c.commit[ceID]
		if !okA || !okC {
			b.Fatalf("row %d (ce_id %s): ack seen %v, commit seen %v", id, ceID, okA, okC)
		}
		ds = append(ds, ack.Sub(commit))
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(ds) != len(c.commit) {
		b.Fatalf("%d rows in the outbox, %d events committed", len(ds), len(c.commit))
	}
	return ds
}

// pctMs is the p-quantile of the sorted ds in milliseconds.
func pctMs(ds []time.Duration, p float64) float64 {
	return float64(ds[int(p*float64(len(ds)-1))]) / float64(time.Millisecond)
}

// reportPercentiles reports the latencies ds (Add to ack for the relay,
// publish to ack for the baseline) and the rate of the events published.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	b.ReportMetric(pctMs(ds, 0.5), "p50-ms")
	b.ReportMetric(pctMs(ds, 0.99), "p99-ms")
	b.ReportMetric(pctMs(ds, 1), "max-ms")
	b.ReportMetric(float64(len(ds))/b.Elapsed().Seconds(), "events/s")
}
