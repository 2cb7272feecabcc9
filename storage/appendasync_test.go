package storage

import (
	"context"
	"fmt"
	"testing"
)

// TestAppendAsyncWaitsForHeldFsync: AppendAsync returns once the batch is
// written, in call order, while the fsync that covers an earlier batch is
// held; Wait returns only after that fsync, and no batch is visible (HWM)
// before it.
func TestAppendAsyncWaitsForHeldFsync(t *testing.T) {
	for _, clog := range []bool{true, false} {
		t.Run(fmt.Sprint("commitlog=", clog), func(t *testing.T) { appendAsyncWaits(t, clog) })
	}
}

func appendAsyncWaits(t *testing.T, clog bool) {
	g := &gatedFS{MemFS: NewMemFS(), gate: make(chan struct{}), entered: make(chan struct{}), clog: clog}
	opts := []func(*Options){commitLogPath}
	if !clog {
		opts = []func(*Options){segmentPath}
	}
	s := openStore(t, g, "/data", opts...)
	l, err := s.CreateLog(TopicPartition{Topic: "async", Partition: 0}, LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := l.AppendAsync(ctx, makeBatch(t, batchSpec{n: 2, valueSize: 10}), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered // the first fsync is in flight and held
	second, err := l.AppendAsync(ctx, makeBatch(t, batchSpec{n: 3, valueSize: 10}), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 5 || l.HighWatermark() != 0 {
		t.Fatalf("end %d, HWM %d; want 5 (both written, in order), 0 (nothing durable)", l.LogEndOffset(), l.HighWatermark())
	}
	done := make(chan AppendResult, 2)
	for _, p := range []*PendingAppend{first, second} {
		go func() {
			res, err := p.Wait()
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
	}
	select {
	case res := <-done:
		t.Fatalf("Wait returned %+v while the fsync was held", res)
	default:
	}
	close(g.gate)
	got := map[int64]int64{}
	for range 2 {
		res := <-done
		got[res.BaseOffset] = res.LastOffset
	}
	if got[0] != 1 || got[2] != 4 {
		t.Fatalf("results %v, want 0-1 and 2-4", got)
	}
	if l.HighWatermark() != 5 {
		t.Fatalf("HWM %d after both waits, want 5", l.HighWatermark())
	}
	// Wait again: same answer.
	if res, err := second.Wait(); err != nil || res.BaseOffset != 2 {
		t.Fatalf("second Wait: %+v, %v", res, err)
	}
}
