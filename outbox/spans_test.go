package outbox_test

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/outbox"
)

// spanLog records when each relay may have been writing records of a
// bucket to the topic: a span runs from a round's send stage to the
// acknowledgement of the round's last record of that bucket the broker
// took. checkExclusive asserts that no two relays' spans on one bucket
// overlap: that two relays never publish events of one key concurrently.
// Times are wall-clock UnixNano, so spans of relay processes on one
// machine compare with each other.
//
// Records that failed were not written (franz-go fails a record only once
// its outcome is known, or it was never sent), so they make no span; a
// killed relay's round in flight ends at the kill. The blind spot: Close
// past ShutdownTimeout closes the client, which fails records whose
// request is still in flight although the broker may yet append them.
type spanLog struct {
	mu   sync.Mutex
	open map[string]*openRound // by relay: the round being sent
	done []span
}

type span struct {
	relay      string
	bucket     int
	start, end int64
}

// openRound is a round between its send and acked stages.
type openRound struct {
	start int64
	end   map[int]int64 // by bucket: the latest outcome so far (0: none yet)
}

func newSpanLog() *spanLog { return &spanLog{open: map[string]*openRound{}} }

// event applies one stage of relay's rounds, at ts, with the buckets of
// its rows. A relay's rounds are sequential: send, acks, acked, then the
// next send.
func (l *spanLog) event(relay, stage string, ts int64, buckets []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.open[relay]
	switch stage {
	case outbox.StageSend:
		o = &openRound{start: ts, end: map[int]int64{}}
		for _, b := range buckets {
			o.end[b] = 0
		}
		l.open[relay] = o
	case outbox.StageAck:
		if o != nil {
			for _, b := range buckets {
				o.end[b] = max(o.end[b], ts)
			}
		}
	case outbox.StageAcked:
		l.closeLocked(relay, ts)
	}
}

// kill ends relay's round in flight at ts, when the relay was killed (a
// killed relay's span never ends by itself).
func (l *spanLog) kill(relay string, ts int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o := l.open[relay]; o != nil {
		for b := range o.end {
			o.end[b] = ts // whatever it had in flight may land until then
		}
	}
	l.closeLocked(relay, ts)
}

func (l *spanLog) closeLocked(relay string, ts int64) {
	o := l.open[relay]
	if o == nil {
		return
	}
	for b, e := range o.end {
		if e != 0 { // 0: every record of b failed, none written
			l.done = append(l.done, span{relay, b, o.start, e})
		}
	}
	delete(l.open, relay)
}

// inFlight reports whether relay has a round between send and acked.
func (l *spanLog) inFlight(relay string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[relay] != nil
}

// hook is an OnStage hook logging relay's stages.
func (l *spanLog) hook(relay string) func(string, []outbox.RoundRow) {
	return func(stage string, rows []outbox.RoundRow) {
		l.event(relay, stage, time.Now().UnixNano(), stageBuckets(stage, rows))
	}
}

// stageBuckets returns the buckets of rows (each once; rows without a key
// have no key order and are left out), for an ack only of those the
// broker took.
func stageBuckets(stage string, rows []outbox.RoundRow) []int {
	var bs []int
	for _, r := range rows {
		if len(r.Key) > 0 && (stage != outbox.StageAck || r.Err == nil) {
			bs = append(bs, outbox.KeyBucket(r.Key))
		}
	}
	slices.Sort(bs)
	return slices.Compact(bs)
}

// spanFileHook is an OnStage hook for a relay process: it appends each
// stage to path (O_APPEND, one write per line, shared by the processes)
// as "relay stage unixnano bucket,bucket,...", for readFile.
func spanFileHook(t testing.TB, path, relay string) func(string, []outbox.RoundRow) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return func(stage string, rows []outbox.RoundRow) {
		if stage != outbox.StageSend && stage != outbox.StageAck && stage != outbox.StageAcked {
			return
		}
		bs := make([]string, 0, len(rows))
		for _, b := range stageBuckets(stage, rows) {
			bs = append(bs, strconv.Itoa(b))
		}
		line := fmt.Sprintf("%s %s %d %s\n", relay, stage, time.Now().UnixNano(), strings.Join(bs, ","))
		if _, err := f.WriteString(line); err != nil {
			panic(err) // a helper process: fail loudly
		}
	}
}

// readFile replays the stages spanFileHook wrote to path.
func (l *spanLog) readFile(t testing.TB, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			t.Fatalf("span file %s: bad line %q", path, sc.Text())
		}
		ts, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil {
			t.Fatalf("span file %s: bad line %q", path, sc.Text())
		}
		var bs []int
		if len(fs) > 3 {
			for _, s := range strings.Split(fs[3], ",") {
				b, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("span file %s: bad line %q", path, sc.Text())
				}
				bs = append(bs, b)
			}
		}
		l.event(fs[0], fs[1], ts, bs)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// overlaps returns the pairs of spans of different relays on one bucket
// that overlap, and the number of handovers (a bucket's span following
// one of another relay), which says the check was not vacuous. Rounds
// still open count as running until now.
func (l *spanLog) overlaps() (bad [][2]span, handovers int) {
	l.mu.Lock()
	all := slices.Clone(l.done)
	now := time.Now().UnixNano()
	for relay, o := range l.open {
		for b := range o.end {
			all = append(all, span{relay, b, o.start, now})
		}
	}
	l.mu.Unlock()
	byBucket := map[int][]span{}
	for _, s := range all {
		byBucket[s.bucket] = append(byBucket[s.bucket], s)
	}
	for _, ss := range byBucket {
		slices.SortFunc(ss, func(a, b span) int { return cmp.Compare(a.start, b.start) })
		for i, s := range ss {
			if i > 0 && ss[i-1].relay != s.relay {
				handovers++
			}
			for _, u := range ss[i+1:] {
				if u.start >= s.end {
					break
				}
				if u.relay != s.relay {
					bad = append(bad, [2]span{s, u})
				}
			}
		}
	}
	return bad, handovers
}

// checkExclusive fails t if two relays' spans on one bucket overlap; it
// returns the number of spans and of handovers checked.
func checkExclusive(t testing.TB, l *spanLog) (spans, handovers int) {
	t.Helper()
	bad, handovers := l.overlaps()
	for i, p := range bad {
		if i == 5 {
			t.Errorf("... %d overlaps in all", len(bad))
			break
		}
		a, b := p[0], p[1]
		t.Errorf("bucket %d: %s published [%d, %d] while %s published from %d (%v before the first ended)",
			a.bucket, a.relay, a.start, a.end, b.relay, b.start, time.Duration(a.end-b.start))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.done), handovers
}

// startRecordedRelay starts a relay whose stages go to hook.
func startRecordedRelay(t testing.TB, cfg outbox.Config, hook func(string, []outbox.RoundRow)) *outbox.Relay {
	t.Helper()
	r, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outbox.OnStage(r, hook)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestSpanLogOverlaps: the recorder itself finds an overlap of two relays
// on one bucket, a killed relay's round counting until the kill, and none
// between consecutive spans, across buckets, or with a round whose records
// all failed.
func TestSpanLogOverlaps(t *testing.T) {
	l := newSpanLog()
	k4 := "k"
	for outbox.KeyBucket([]byte(k4)) != 4 {
		k4 += "k"
	}
	failed := []outbox.RoundRow{{Key: []byte(k4), Err: errors.New("refused")}}
	l.event("a", outbox.StageSend, 1, []int{4})
	l.event("a", outbox.StageAck, 3, stageBuckets(outbox.StageAck, failed))
	l.event("b", outbox.StageSend, 2, []int{4}) // a's record failed: not written
	l.event("b", outbox.StageAck, 3, stageBuckets(outbox.StageAck, []outbox.RoundRow{{Key: []byte(k4)}}))
	l.event("a", outbox.StageAcked, 4, nil)
	l.event("b", outbox.StageAcked, 4, nil)
	l.event("a", outbox.StageSend, 10, []int{1, 2})
	l.event("a", outbox.StageAck, 15, []int{1})
	l.event("b", outbox.StageSend, 17, []int{1}) // after a's bucket 1 ended
	l.event("b", outbox.StageAck, 18, []int{1})
	l.event("b", outbox.StageAcked, 18, nil)
	l.event("b", outbox.StageSend, 19, []int{2}) // while a's bucket 2 is in flight
	l.event("a", outbox.StageAck, 20, []int{2})
	l.event("a", outbox.StageAcked, 20, nil)
	l.event("b", outbox.StageAck, 21, []int{2})
	l.event("b", outbox.StageAcked, 21, nil)
	l.event("c", outbox.StageSend, 30, []int{3})
	l.kill("c", 40)
	l.event("a", outbox.StageSend, 39, []int{3})
	bad, handovers := l.overlaps()
	if len(bad) != 2 || bad[0][0].bucket+bad[1][0].bucket != 5 || handovers != 3 {
		t.Fatalf("overlaps %v, handovers %d: want buckets 2 and 3, 3 handovers", bad, handovers)
	}
}
