// Command fsyncprobe measures what durable small appends cost on this
// machine's disk, without the broker: 1 KiB appends offered at a fixed rate,
// spread round-robin over some files, each file made durable by a
// group-commit loop (appends written while an fsync runs share the next
// one), exactly as storage does it. It reports fsyncs per second, appends
// per fsync, the fsync latency distribution and the append-to-durable
// latency, for four layouts:
//
//   - per-file/grow: one file per partition, appended to (every fdatasync
//     also commits the file's new size: an ext4 journal commit);
//   - per-file/prewritten: the same, but the files were filled with zeros
//     and synced first, so an fdatasync only flushes data;
//   - shared/grow: every partition's appends go to one file with one
//     group-commit loop (a commit log shared by all partitions);
//   - shared/prewritten: the shared file, prewritten.
//
// It is the measurement behind docs/storage.md ("Durable acknowledgements:
// the alternatives"):
//
//	go run ./internal/tools/fsyncprobe --dir /var/tmp/probe --rate 5000 --files 8 -d 10s
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

func main() {
	var (
		dir      = flag.String("dir", "", "directory on the disk to measure (required; not tmpfs)")
		rate     = flag.Int("rate", 5000, "appends per second, all files together")
		files    = flag.Int("files", 8, "partitions")
		size     = flag.Int("size", 1024, "bytes per append")
		duration = flag.Duration("d", 10*time.Second, "duration of each layout")
		depth    = flag.Int("depth", 1, "rounds (fsyncs) of one file in flight at once; acknowledged in order")
		only     = flag.String("only", "", "run only this layout (per-file/grow, per-file/prewritten, shared/grow, shared/prewritten)")
	)
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "fsyncprobe: --dir is required")
		os.Exit(2)
	}
	if *depth < 1 {
		fmt.Fprintln(os.Stderr, "fsyncprobe: --depth must be at least 1")
		os.Exit(2)
	}
	fmt.Printf("%d appends/s of %d bytes over %d partitions, %d round(s) in flight per file, %v per layout, in %s\n", *rate, *size, *files, *depth, *duration, *dir)
	fmt.Printf("%-20s %9s %9s %12s | %-38s | %s\n", "layout", "fsyncs/s", "appends", "appends/sync",
		"fsync ms p50 / p99 / p99.9 / max", "append->durable ms p50 / p99 / p99.9 / max")
	for _, l := range []struct {
		name     string
		shared   bool
		prewrite bool
	}{{"per-file/grow", false, false}, {"per-file/prewritten", false, true}, {"shared/grow", true, false}, {"shared/prewritten", true, true}} {
		if *only != "" && *only != l.name {
			continue
		}
		n := *files
		if l.shared {
			n = 1
		}
		sub := filepath.Join(*dir, fmt.Sprintf("probe-%d", time.Now().UnixNano()))
		r, err := run(sub, n, *files, *rate, *size, *depth, *duration, l.prewrite)
		os.RemoveAll(sub)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fsyncprobe:", err)
			os.Exit(1)
		}
		secs := duration.Seconds()
		fmt.Printf("%-20s %9.0f %9d %12.2f | %6.3f / %6.3f / %6.3f / %7.3f | %6.3f / %6.3f / %6.3f / %7.3f\n",
			l.name, float64(r.fsync.TotalCount())/secs, r.appends, float64(r.appends)/float64(r.fsync.TotalCount()),
			ms(r.fsync, 50), ms(r.fsync, 99), ms(r.fsync, 99.9), float64(r.fsync.Max())/1e3,
			ms(r.ack, 50), ms(r.ack, 99), ms(r.ack, 99.9), float64(r.ack.Max())/1e3)
	}
}

func ms(h *hdrhistogram.Histogram, q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }

type result struct {
	fsync, ack *hdrhistogram.Histogram // microseconds
	appends    int64
}

// file is one group-committed file.
type file struct {
	f        *os.File
	mu       sync.Mutex
	end      int64
	pending  []time.Time   // scheduled times of the appends waiting for the next fsync
	inflight int           // rounds (fsyncs) in flight
	last     chan struct{} // closed when the newest round in flight is acknowledged
}

func run(dir string, nfiles, partitions, rate, size, depth int, d time.Duration, prewrite bool) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	total := int64(rate) * int64(d/time.Second+1) * int64(size) / int64(nfiles)
	fs := make([]*file, nfiles)
	for i := range fs {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%d.log", i)))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if prewrite {
			zero := make([]byte, 1<<20)
			for off := int64(0); off < total+1<<20; off += int64(len(zero)) {
				if _, err := f.WriteAt(zero, off); err != nil {
					return nil, err
				}
			}
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				return nil, err
			}
		}
		fs[i] = &file{f: f}
	}
	res := &result{
		fsync: hdrhistogram.New(1, 60e6, 3),
		ack:   hdrhistogram.New(1, 60e6, 3),
	}
	var resMu sync.Mutex
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i)
	}
	// startRound takes the waiting appends and fsyncs them in a round of
	// their own; with depth > 1 it runs while up to depth-1 earlier rounds
	// of the file are still in flight, and acknowledges only after they
	// did (in order, as a durable prefix must be). The caller holds fl.mu.
	var startRound func(fl *file)
	startRound = func(fl *file) {
		waiting, prev, done := fl.pending, fl.last, make(chan struct{})
		fl.pending, fl.last = nil, done
		fl.inflight++
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := unix.Fdatasync(int(fl.f.Fd())); err != nil {
				failed.Store(&err)
			}
			synced := time.Now()
			if prev != nil {
				<-prev
			}
			acked := time.Now()
			resMu.Lock()
			res.fsync.RecordValue(synced.Sub(start).Microseconds())
			for _, t := range waiting {
				res.ack.RecordValue(max(acked.Sub(t).Microseconds(), 1))
			}
			resMu.Unlock()
			close(done)
			fl.mu.Lock()
			fl.inflight--
			if len(fl.pending) > 0 && fl.inflight < depth {
				startRound(fl)
			}
			fl.mu.Unlock()
		}()
	}
	begin := time.Now()
	n := int64(float64(rate) * d.Seconds())
	for i := int64(0); i < n; i++ {
		due := begin.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		fl := fs[int(i%int64(partitions))%nfiles]
		fl.mu.Lock()
		if _, err := fl.f.WriteAt(buf, fl.end); err != nil {
			fl.mu.Unlock()
			return nil, err
		}
		fl.end += int64(size)
		fl.pending = append(fl.pending, due)
		if fl.inflight < depth {
			startRound(fl)
		}
		fl.mu.Unlock()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return nil, *e
	}
	res.appends = n
	return res, nil
}
