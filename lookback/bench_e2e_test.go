package lookback_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
	"github.com/spoolmq/spool/spooltest"
)

// timingStore records, for every appended record, how long after its
// timestamp (set by the producer when it produced it) the append returned.
type timingStore struct {
	lookback.Store
	mu  sync.Mutex
	lat []time.Duration
}

func (s *timingStore) Append(ctx context.Context, rs []lookback.Record) error {
	err := s.Store.Append(ctx, rs)
	now := time.Now()
	s.mu.Lock()
	for _, r := range rs {
		s.lat = append(s.lat, now.Sub(r.Timestamp))
	}
	s.mu.Unlock()
	return err
}

// BenchmarkSearchable measures how soon an event is searchable (durable in
// the archive) after it was produced, with 1 KiB events produced at 5,000/s
// for 10 s to the in-process broker, fsync=always. Run with -benchtime 1x.
func BenchmarkSearchable(b *testing.B) {
	for _, kind := range []string{"sqlite", "pebble"} {
		b.Run("store="+kind, func(b *testing.B) { benchSearchable(b, kind) })
	}
}

func benchSearchable(b *testing.B, kind string) {
	brk := spooltest.Start(b, spooltest.WithPartitions(8))
	addrs := []string{brk.Addr()}
	kafkatest.CreateTopic(b, addrs, "orders", 8)
	inner, err := lookback.Open(context.Background(), kind+":"+b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer inner.Close()
	st := &timingStore{Store: inner}
	svc, err := lookback.New(lookback.Config{Brokers: addrs, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	const rate, secs = 5000, 10
	value := make([]byte, 1024)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	for b.Loop() {
		start := time.Now()
		var wg sync.WaitGroup
		for i := range rate * secs {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
				time.Sleep(d) // pacing the load, not synchronising a test
			}
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprint(i % 1000)), Value: value,
				Headers: []kgo.RecordHeader{{Key: "ce_id", Value: []byte(fmt.Sprint(i))}, {Key: "ce_type", Value: []byte("order.placed")}}},
				func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
					wg.Done()
				})
		}
		wg.Wait()
		kafkatest.Eventually(b, 60*time.Second, "all archived", func() bool {
			s, _ := inner.Stats(context.Background())
			return s.Events >= rate*secs
		})
	}
	st.mu.Lock()
	lat := slices.Clone(st.lat)
	st.mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkReplay measures replay throughput: 100,000 archived 1 KiB
// events replayed into a topic of the in-process broker (fsync=always),
// from the request to the last acknowledged record. Run with -benchtime 1x.
func BenchmarkReplay(b *testing.B) {
	for _, kind := range []string{"sqlite", "pebble"} {
		b.Run("store="+kind, func(b *testing.B) { benchReplay(b, kind) })
	}
}

func benchReplay(b *testing.B, kind string) {
	brk := spooltest.Start(b, spooltest.WithPartitions(8))
	addrs := []string{brk.Addr()}
	kafkatest.CreateTopic(b, addrs, "dst", 8)
	st, err := lookback.Open(context.Background(), kind+":"+b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const n = 100_000
	value := make([]byte, 1024)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	ts := time.Now().Add(-time.Hour)
	for off := 0; off < n; {
		var rs []lookback.Record
		for range 5000 {
			rs = append(rs, lookback.Record{Topic: "orders", Partition: int32(off % 8), Offset: int64(off), Timestamp: ts.Add(time.Duration(off) * time.Microsecond),
				Key: []byte(fmt.Sprint(off % 1000)), Value: value, Headers: []lookback.Header{{Key: "ce_type", Value: []byte("order.placed")}}})
			off++
		}
		if err := st.Append(context.Background(), rs); err != nil {
			b.Fatal(err)
		}
	}
	svc, err := lookback.New(lookback.Config{Brokers: addrs, Store: st, Exclude: []string{"^dst$"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	var took time.Duration
	var cpu int64
	for b.Loop() {
		start, cpu0 := time.Now(), processCPU(b)
		var rp lookback.ReplayState
		postJSON(b, srv.URL+"/api/lookback/replays", lookback.ReplaySpec{Filter: lookback.Filter{Topic: "orders"}, ToTopic: "dst"}, http.StatusAccepted, &rp)
		kafkatest.Eventually(b, 10*time.Minute, "the replay", func() bool {
			s, err := st.Replay(context.Background(), rp.ID)
			return err == nil && s.Status != "running"
		})
		took, cpu = took+time.Since(start), cpu+processCPU(b)-cpu0
	}
	b.ReportMetric(float64(n*b.N)/took.Seconds(), "events/s")
	b.ReportMetric(float64(cpu)/float64(n*b.N), "cpu-ns/event")

	// Baseline, same run: the same records produced straight to the
	// broker by one franz-go client (the ceiling a replay can reach).
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(2000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	start, cpu0 := time.Now(), processCPU(b)
	for i := range n {
		cl.Produce(context.Background(), &kgo.Record{Topic: "dst", Key: []byte(fmt.Sprint(i % 1000)), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "baseline-produce-events/s")
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(n), "baseline-cpu-ns/event")
}

// processCPU is the process's user and system CPU time in nanoseconds
// (broker and lookback alike: both run in the benchmark's process).
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
