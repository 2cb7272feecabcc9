package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	for _, be := range backends(b) {
		b.Run("db="+be.name, func(b *testing.B) {
			db, srv := benchSetup(b, be)
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
// relay publishes them to an in-process Spool broker, and reports the
// commit-to-ack latency percentiles (Add to the broker's acknowledgement;
// created_at has millisecond resolution) and the rate the writers reached.
// A transaction is 7 round trips (BEGIN, 5 INSERTs, COMMIT): 64 writers
// leave each 64 ms for them, where 16 could not keep up with PostgreSQL on
// a loaded machine. The same runs at 1,000 events/s show the relay's share
// when the database is not saturated.
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
	for _, be := range backends(b) {
		b.Run(fmt.Sprintf("db=%s/rate=%d", be.name, rate), func(b *testing.B) {
			db, srv := benchSetup(b, be)
			h := &latencyHooks{}
			cfg := outbox.Config{DB: db, Brokers: []string{srv.Addr()}, Hooks: h, PollInterval: 5 * time.Millisecond}
			r, err := outbox.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			b.ResetTimer()
			var wg sync.WaitGroup
			var txMu sync.Mutex
			var txs []time.Duration // BEGIN to the end of COMMIT
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(interval)
					defer tick.Stop()
					ctx := context.Background()
					for i := w * perTx; i < b.N; i += writers * perTx {
						<-tick.C
						begin := time.Now()
						tx, err := db.BeginTx(ctx, nil)
						if err != nil {
							b.Error(err)
							return
						}
						for j := 0; j < perTx && i+j < b.N; j++ {
							if err := outbox.Add(ctx, tx, benchEvent(b, i+j), outbox.Topic("bench")); err != nil {
								b.Error(err)
								return
							}
						}
						if err := tx.Commit(); err != nil {
							b.Error(err)
							return
						}
						txMu.Lock()
						txs = append(txs, time.Since(begin))
						txMu.Unlock()
						if be.dialect == outbox.SQLite {
							r.Wake() // in-process: no NOTIFY on SQLite
						}
					}
				}()
			}
			wg.Wait()
			for r.Stats().Published < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			h.mu.Lock()
			ds := slices.Clone(h.ds)
			h.mu.Unlock()
			reportPercentiles(b, ds)
			// The writers' own transactions, part of the latency above
			// (it starts at Add): the database's share.
			slices.Sort(txs)
			b.ReportMetric(float64(txs[len(txs)/2])/float64(time.Millisecond), "tx-p50-ms")
			b.ReportMetric(float64(txs[len(txs)*99/100])/float64(time.Millisecond), "tx-p99-ms")
		})
	}
}

func reportPercentiles(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	pct := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(len(ds))/b.Elapsed().Seconds(), "events/s")
}
