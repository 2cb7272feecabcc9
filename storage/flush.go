package storage

import "time"

// flushPolicyLocked applies a log's flush.messages and flush.ms
// (LogConfig.FlushMessages, FlushAfter) to an append of n records in the
// FsyncInterval and FsyncNever modes, whose appends are otherwise durable
// only at the next interval or when the OS writes them back. It returns the
// fsync the append must wait for (flush.messages reached), or nil. The
// caller holds l.mu and has written the batch and raised the HWM.
func (l *Log) flushPolicyLocked(cfg *LogConfig, n int32) *pendingSync {
	if cfg.FlushAfter > 0 && l.mu.flushTimer == nil {
		l.mu.flushTimer = time.AfterFunc(cfg.FlushAfter, l.flushTimed)
	}
	if cfg.FlushMessages <= 0 {
		return nil
	}
	l.mu.unflushed += int64(n)
	if l.mu.unflushed < cfg.FlushMessages {
		return nil
	}
	l.mu.unflushed = 0
	return l.joinSyncLocked()
}

// flushTimed is the flush.ms timer: it fsyncs what the log holds now. A
// closed log's segments refuse the fsync (closing synced them).
func (l *Log) flushTimed() {
	l.mu.Lock()
	l.mu.flushTimer = nil
	closed := l.mu.closed
	l.mu.Unlock()
	if !closed {
		l.syncActive()
	}
}
