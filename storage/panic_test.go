package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPanicUnderAppendLockFailsLog: a panic inside the locked part of an
// append (in AppendOptions.Check, or in the file system's write of the
// segment) reaches the caller as a panic, fails the log (later appends get
// ErrLogFailed naming the panic) and releases the log's lock: a later
// append, a read and Close all return instead of waiting forever on it.
func TestPanicUnderAppendLockFailsLog(t *testing.T) {
	for name, c := range map[string]struct {
		inject func(fsys *MemFS) AppendOptions
	}{
		"check": {func(*MemFS) AppendOptions {
			return AppendOptions{Check: func(BatchHeader, int64) error { panic("injected: check bug") }}
		}},
		"write": {func(fsys *MemFS) AppendOptions {
			fsys.SetInjector(func(op Op, path string) error {
				if op == OpWrite && strings.HasSuffix(path, logSuffix) {
					panic("injected: disk driver bug")
				}
				return nil
			})
			return AppendOptions{}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := NewMemFS()
			// Not openStore: its cleanup's Close would hang on a lock
			// left held, and this test is to fail, not hang; Close is
			// one of the steps below.
			s, err := Open(Options{Dir: "/data", FS: fsys, RetentionCheckInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			l, err := s.CreateLog(tp0, LogConfig{})
			if err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 10}))

			opts := c.inject(fsys)
			if r := appendRecovering(l, makeBatch(t, batchSpec{n: 3, valueSize: 10}), opts); r == nil {
				t.Fatal("the panic under the append lock did not reach the caller")
			}
			fsys.SetInjector(nil)

			// Each of these takes the log's lock: a lock left held would
			// hang them, so each runs against a deadline.
			within(t, "append after the panic", func() {
				_, err := l.Append(context.Background(), makeBatch(t, batchSpec{n: 1}), AppendOptions{})
				if !errors.Is(err, ErrLogFailed) || !strings.Contains(err.Error(), "panic during append") {
					t.Errorf("append to the log after a panic: %v, want ErrLogFailed naming the panic", err)
				}
			})
			if l.LogEndOffset() != 2 || l.HighWatermark() != 2 {
				t.Errorf("LEO %d, HWM %d after the panicked append, want 2 and 2", l.LogEndOffset(), l.HighWatermark())
			}
			within(t, "read after the panic", func() {
				if hs := readAll(t, l, 0); len(hs) != 1 || hs[0].NumRecords != 2 {
					t.Errorf("read after the panic: %+v, want the one batch of 2 records", hs)
				}
			})
			within(t, "close after the panic", func() {
				// Close reports the failed log, as after a failed fsync.
				if err := s.Close(); !errors.Is(err, ErrLogFailed) {
					t.Errorf("Close after the panic: %v, want the log's failure", err)
				}
			})
		})
	}
}

// appendRecovering appends b and returns what the append panicked with
// (nil if it did not panic).
func appendRecovering(l *Log, b []byte, opts AppendOptions) (r any) {
	defer func() { r = recover() }()
	l.Append(context.Background(), b, opts)
	return nil
}

// within runs fn and fails the test if it has not returned within 10s
// (a deadline for a call that would block forever, not a wait for work).
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still blocked after 10s (the append lock was not released?)", what)
	}
}
