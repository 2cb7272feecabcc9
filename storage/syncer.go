package storage

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// syncer makes appends durable.
//
// FsyncAlways (group commit): an appender writes under its log's mu, then,
// still under it, registers the log in the current round and waits for the
// round to finish. The syncer goroutine takes all logs registered so far,
// opens the next round, fsyncs the active segment of every log in parallel,
// raises each log's HWM to the end it observed before syncing, and closes the
// round. Because a log is registered only after its bytes were written and the
// syncer reads the end only after taking the round, the end it syncs covers
// every waiter of the round. While one round syncs, the next fills up: one
// fsync per log covers every append that arrived during the previous fsync.
type syncer struct {
	s    *Store
	kick chan struct{}

	rounds, fsyncs atomic.Int64 // statistics: group commits, files fsynced

	mu struct {
		sync.Mutex
		cur   *round
		dirty []*Log
	}
}

// round is one group commit; done closes when its fsyncs finished (each
// waiter then compares its end offset with its log's HWM).
type round struct{ done chan struct{} }

func newSyncer(s *Store) *syncer {
	y := &syncer{s: s, kick: make(chan struct{}, 1)}
	y.mu.cur = &round{done: make(chan struct{})}
	return y
}

// registerLocked adds l (whose mu the caller holds) to the current round and returns it.
func (y *syncer) registerLocked(l *Log) *round {
	y.mu.Lock()
	if !l.mu.queued {
		l.mu.queued = true
		y.mu.dirty = append(y.mu.dirty, l)
	}
	r := y.mu.cur
	y.mu.Unlock()
	select {
	case y.kick <- struct{}{}:
	default:
	}
	return r
}

func (y *syncer) runGroupCommit() {
	defer y.s.wg.Done()
	var spare []*Log
	for {
		stopping := false
		select {
		case <-y.kick:
		case <-y.s.stop:
			stopping = true // one last round for appends already written
		}
		// The appenders just woken by the previous round are runnable now;
		// letting them write and register first puts them in this round
		// rather than the next (otherwise appenders settle into two cohorts
		// that alternate, each fsync covering only half of them).
		runtime.Gosched()
		y.mu.Lock()
		r, logs := y.mu.cur, y.mu.dirty
		if len(logs) > 0 {
			y.mu.cur = &round{done: make(chan struct{})}
			y.mu.dirty = spare[:0]
			for _, l := range logs {
				l.mu.queued = false
			}
		}
		y.mu.Unlock()
		if len(logs) > 0 {
			syncLogs(logs)
			y.rounds.Add(1)
			y.fsyncs.Add(int64(len(logs)))
			close(r.done)
			clear(logs)
			spare = logs
		}
		if stopping {
			return
		}
	}
}

// maxParallelFsyncs bounds the goroutines (and so OS threads blocked in
// fdatasync) one round uses, however many partitions are dirty.
const maxParallelFsyncs = 16

// syncLogs fsyncs the active segment of each log, in parallel so that the
// file system can merge the journal commits, and raises each HWM.
func syncLogs(logs []*Log) {
	if len(logs) == 1 {
		logs[0].syncActive()
		return
	}
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for w := 0; w < min(len(logs), maxParallelFsyncs); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(logs)); i = next.Add(1) - 1 {
				logs[i].syncActive()
			}
		}()
	}
	wg.Wait()
}

// syncActive fsyncs l's active segment and raises the HWM to the log end
// observed before the fsync. Segments rolled before that were synced by the roll.
func (l *Log) syncActive() {
	l.mu.Lock()
	seg, end := l.mu.active, l.mu.next
	l.mu.Unlock()
	if l.err.Load() != nil || !seg.acquire() {
		return
	}
	err := seg.log.Sync()
	seg.release()
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// nothing past the HWM may be acknowledged or served, ever.
		l.store.opts.Logger.Error("storage: fsync failed", "log", l.tp.String(), "err", err)
		l.fail(err)
		l.notify()
		return
	}
	l.advanceHWM(end)
}

func (y *syncer) runInterval(every time.Duration) {
	defer y.s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-y.s.stop:
			return
		case <-t.C:
		}
		var logs []*Log
		for _, l := range y.s.Logs() {
			if l.dirty.Swap(false) {
				logs = append(logs, l)
			}
		}
		if len(logs) > 0 {
			syncLogs(logs)
		}
	}
}
