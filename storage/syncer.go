package storage

import (
	"sync"
	"sync/atomic"
	"time"
)

// syncer makes appends durable.
//
// FsyncAlways (group commit): an appender writes its batch under its log's
// mu and, still under it, joins the log's pending sync (one per log) and
// starts the log's sync loop if it is not running; then it waits. The sync
// loop takes a slot (at most maxParallelFsyncs fsyncs run at once, so a store
// with thousands of busy partitions doesn't park thousands of threads in
// fdatasync), takes the pending sync and the log end under mu, fsyncs the
// active segment, raises the HWM to that end and wakes the waiters. Appends
// that arrive while an fsync is in flight, or while it waits for a slot,
// join the next one: one fsync covers all of them. The partitions' fsyncs run
// concurrently and independently, so no partition waits for another's
// (slower) fsync, and the device sees a continuous stream of writes and
// flushes. Because a waiter joins only after its bytes were written, and the
// loop reads the end only after taking the pending sync, the end it syncs
// covers every waiter of that sync.
type syncer struct {
	s     *Store
	slots chan struct{}
	loops sync.WaitGroup // running sync loops

	fsyncs, appends atomic.Int64 // statistics
}

// maxParallelFsyncs bounds the fsyncs in flight at once across all logs.
const maxParallelFsyncs = 16

// pendingSync is one fsync of one log; done closes when it finished (each
// waiter then compares its end offset with its log's HWM).
type pendingSync struct{ done chan struct{} }

func newSyncer(s *Store) *syncer {
	return &syncer{s: s, slots: make(chan struct{}, maxParallelFsyncs)}
}

// joinSyncLocked adds the caller's append (already written) to l's next
// fsync and returns it. The caller holds l.mu and l is not closed.
func (l *Log) joinSyncLocked() *pendingSync {
	p := l.mu.pending
	if p == nil {
		p = &pendingSync{done: make(chan struct{})}
		l.mu.pending = p
	}
	if !l.mu.syncing {
		l.mu.syncing = true
		y := l.store.syncer
		y.loops.Add(1) // not concurrent with loops.Wait: Close marks logs closed first
		go l.syncLoop(y)
	}
	y := l.store.syncer
	y.appends.Add(1)
	return p
}

// syncLoop fsyncs l until no append is waiting.
func (l *Log) syncLoop(y *syncer) {
	defer y.loops.Done()
	for {
		y.slots <- struct{}{}
		l.mu.Lock()
		p, seg, end := l.mu.pending, l.mu.active, l.mu.next
		l.mu.pending = nil
		l.mu.Unlock()
		l.syncTo(seg, end)
		<-y.slots
		y.fsyncs.Add(1)
		close(p.done)
		l.mu.Lock()
		if l.mu.pending == nil {
			l.mu.syncing = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	}
}

// syncTo fsyncs seg and raises the HWM to end, the log end observed before
// the fsync. Segments rolled before that were synced by the roll.
func (l *Log) syncTo(seg *segment, end int64) {
	if l.err.Load() != nil || !seg.acquire() {
		return
	}
	start := time.Now()
	err := seg.log.Sync()
	seg.release()
	if f := l.store.opts.OnFsync; f != nil {
		f(time.Since(start), err)
	}
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

// syncActive fsyncs l's active segment up to its current end.
func (l *Log) syncActive() {
	l.mu.Lock()
	seg, end := l.mu.active, l.mu.next
	l.mu.Unlock()
	l.syncTo(seg, end)
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
		var wg sync.WaitGroup
		for _, l := range y.s.Logs() {
			if l.dirty.Swap(false) {
				y.slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					l.syncActive()
					<-y.slots
				}()
			}
		}
		wg.Wait()
	}
}
