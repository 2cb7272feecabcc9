// Command gatewaybench measures the HTTP gateway (docs/benchmarks.md,
// scripts/bench-gateway.sh):
//
//	gatewaybench -mode produce -batch 1 -conns 128 -duration 20s
//	    single-record POST /api/topics/{topic}/records over keep-alive
//	    connections, as fast as the gateway answers;
//	gatewaybench -mode roundtrip -rate 1000 -duration 30s
//	    async commands at a fixed offered rate: POST /api/commands/{topic},
//	    an agent service replies, GET /api/requests/{id} with Prefer: wait
//	    returns; the latency of the whole round trip, measured from the
//	    scheduled send time (no coordinated omission).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
)

func main() {
	mode := flag.String("mode", "produce", "produce or roundtrip")
	gw := flag.String("gateway", "http://127.0.0.1:8080", "gateway base URL")
	brokers := flag.String("brokers", "127.0.0.1:9092", "brokers (roundtrip: for the replying service)")
	topic := flag.String("topic", "gwbench", "topic (must exist)")
	conns := flag.Int("conns", 128, "concurrent keep-alive connections")
	batch := flag.Int("batch", 1, "records per produce request")
	size := flag.Int("size", 100, "value size in bytes")
	rate := flag.Int("rate", 1000, "roundtrip: offered requests per second")
	dur := flag.Duration("duration", 20*time.Second, "how long to measure")
	flag.IntVar(&serverPID, "server-pid", 0, "process id of the server (spool serve), to report its CPU time per request")
	flag.BoolVar(&keyless, "keyless", false, "roundtrip: submit commands without a key")
	flag.Parse()
	tr := &http.Transport{MaxIdleConns: *conns * 2, MaxIdleConnsPerHost: *conns * 2, MaxConnsPerHost: *conns * 2, IdleConnTimeout: time.Minute}
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var err error
	switch *mode {
	case "produce":
		err = produce(cl, *gw, *topic, *conns, *batch, *size, *dur)
	case "roundtrip":
		err = roundtrip(cl, *gw, strings.Split(*brokers, ","), *topic, *conns, *rate, *dur)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

func produce(cl *http.Client, gw, topic string, conns, batch, size int, dur time.Duration) error {
	val := strings.Repeat("x", max(size-2, 0))
	recs := make([]string, batch)
	for i := range recs {
		recs[i] = `{"value":"` + val + `"}`
	}
	body := []byte(`{"records":[` + strings.Join(recs, ",") + `]}`)
	url := gw + "/api/topics/" + topic + "/records"
	var (
		reqs, fails atomic.Int64
		mu          sync.Mutex
		hist        = hdrhistogram.New(1, 60_000_000, 3) // µs
		wg          sync.WaitGroup
	)
	warm := time.Now().Add(2 * time.Second)
	end := warm.Add(dur)
	cpu := startCPU(warm)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := hdrhistogram.New(1, 60_000_000, 3)
			for {
				start := time.Now()
				if start.After(end) {
					break
				}
				resp, err := cl.Post(url, "application/json", bytes.NewReader(body))
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if start.Before(warm) {
					continue
				}
				if !ok {
					fails.Add(1)
					continue
				}
				reqs.Add(1)
				local.RecordValue(time.Since(start).Microseconds())
			}
			mu.Lock()
			hist.Merge(local)
			mu.Unlock()
		}()
	}
	wg.Wait()
	n := reqs.Load()
	fmt.Printf("http produce: batch=%d size=%dB conns=%d: %.0f requests/s, %.0f records/s, %d failed; latency ms p50 %.2f p99 %.2f p99.9 %.2f\n",
		batch, size, conns, float64(n)/dur.Seconds(), float64(n*int64(batch))/dur.Seconds(), fails.Load(),
		ms(hist.ValueAtQuantile(50)), ms(hist.ValueAtQuantile(99)), ms(hist.ValueAtQuantile(99.9)))
	cpu.print(n, "HTTP client")
	return nil
}

func ms(us int64) float64 { return float64(us) / 1000 }

func roundtrip(cl *http.Client, gw string, brokers []string, topic string, conns, rate int, dur time.Duration) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := agent.New("gwbench-service", []string{topic}, agent.WithBrokers(brokers...),
		agent.WithClientOptions(kgo.FetchMaxWait(50*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd())),
		agent.WithConcurrency(64), agent.WithCorrelationOrder(), // keyless commands concurrently too
		agent.WithDefaultHandler(func(ctx context.Context, m *agent.Message) error {
			called := time.Now()
			err := agent.Reply(ctx, m, json.RawMessage(`{"ok":true}`))
			serviceTimes.Store(m.CorrelationID, [2]time.Time{called, time.Now()})
			return err
		}))
	if err != nil {
		return err
	}
	svc := make(chan error, 1)
	go func() { svc <- a.Run(ctx) }()
	// Wait until the service answers one request before measuring.
	for i := 0; ; i++ {
		if _, err := once(cl, gw, topic); err == nil {
			break
		} else if i > 300 {
			return fmt.Errorf("warm-up: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var (
		mu     sync.Mutex
		hist   = hdrhistogram.New(1, 60_000_000, 3)
		stages = newStageHists()
		fails  atomic.Int64
		wg     sync.WaitGroup
		ticks  = make(chan time.Time, rate) // scheduled send times
		warmup = 2 * time.Second
	)
	total := int((dur + warmup).Seconds() * float64(rate))
	go func() {
		start := time.Now()
		interval := time.Second / time.Duration(rate)
		for i := range total {
			at := start.Add(time.Duration(i) * interval)
			time.Sleep(time.Until(at))
			ticks <- at
		}
		close(ticks)
	}()
	measureFrom := time.Now().Add(warmup)
	cpu := startCPU(measureFrom)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := hdrhistogram.New(1, 60_000_000, 3)
			localStages := newStageHists()
			for at := range ticks {
				rt, err := once(cl, gw, topic)
				if at.Before(measureFrom) {
					continue
				}
				if err != nil {
					fails.Add(1)
					continue
				}
				local.RecordValue(time.Since(at).Microseconds())
				localStages.record(at, rt)
			}
			mu.Lock()
			hist.Merge(local)
			stages.merge(localStages)
			mu.Unlock()
		}()
	}
	wg.Wait()
	cpu.stop()
	cancel()
	<-svc
	fmt.Printf("async round trip (POST 202 -> agent.Reply -> GET Prefer: wait=10 200): offered %d/s for %v, %d measured, %d failed; latency ms p50 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
		rate, dur, hist.TotalCount(), fails.Load(), ms(hist.ValueAtQuantile(50)), ms(hist.ValueAtQuantile(99)),
		ms(hist.ValueAtQuantile(99.9)), ms(hist.Max()))
	stages.print()
	cpu.print(hist.TotalCount(), "HTTP client and the replying agent")
	return nil
}

// serviceTimes holds, by request id, when the service's handler was called
// and when its agent.Reply returned.
var serviceTimes sync.Map

// roundTrip is when each stage of one round trip ended.
type roundTrip struct {
	id                  string
	sent, accepted, got time.Time // POST sent, its 202 read, the GET's 200 read
}

// stageHists are the latencies of the round trip's stages, each measured
// from the scheduled send time, so they add up: a late stage shows where
// the time went.
type stageHists struct{ h [5]*hdrhistogram.Histogram }

var stageNames = [5]string{"sent (a connection free)", "202 read", "handler called", "agent.Reply returned", "GET 200 read"}

func newStageHists() *stageHists {
	s := &stageHists{}
	for i := range s.h {
		s.h[i] = hdrhistogram.New(1, 60_000_000, 3)
	}
	return s
}

func (s *stageHists) record(at time.Time, rt roundTrip) {
	st, ok := serviceTimes.LoadAndDelete(rt.id)
	if !ok {
		return
	}
	svc := st.([2]time.Time)
	for i, t := range [5]time.Time{rt.sent, rt.accepted, svc[0], svc[1], rt.got} {
		s.h[i].RecordValue(max(t.Sub(at).Microseconds(), 1))
	}
}

func (s *stageHists) merge(o *stageHists) {
	for i := range s.h {
		s.h[i].Merge(o.h[i])
	}
}

func (s *stageHists) print() {
	fmt.Println("stages, ms after the scheduled send (p50 / p99):")
	for i, h := range s.h {
		fmt.Printf("  %-26s %8.2f / %8.2f\n", stageNames[i], ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(99)))
	}
}

// once submits a command, keyed by a fresh number (as a real command is
// keyed by its entity; a keyless one is handled one at a time per
// partition by the agent), and long-polls it to its final state.
func once(cl *http.Client, gw, topic string) (roundTrip, error) {
	rt := roundTrip{sent: time.Now()}
	url := gw + "/api/commands/" + topic + "?type=bench"
	if !keyless {
		url += "&key=" + strconv.FormatInt(keySeq.Add(1), 10)
	}
	resp, err := cl.Post(url, "application/json", strings.NewReader(`{"n":1}`))
	if err != nil {
		return rt, err
	}
	var st struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 202 {
		return rt, fmt.Errorf("submit: %d %v", resp.StatusCode, err)
	}
	rt.id, rt.accepted = st.ID, time.Now()
	req, _ := http.NewRequest("GET", gw+"/api/requests/"+st.ID, nil)
	req.Header.Set("Prefer", "wait=10")
	resp, err = cl.Do(req)
	if err != nil {
		return rt, err
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || st.State != "succeeded" {
		return rt, fmt.Errorf("poll: %d %s %v", resp.StatusCode, st.State, err)
	}
	rt.got = time.Now()
	return rt, nil
}

// keySeq numbers the commands' keys.
var keySeq atomic.Int64

var (
	keyless   bool // -keyless
	serverPID int  // -server-pid
)
