package storage

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// The conformance suite runs every test on both FS implementations.

type fsCase struct {
	name string
	new  func(t *testing.T) (FS, string)
}

var fsCases = []fsCase{
	{"os", func(t *testing.T) (FS, string) { return OSFS{}, t.TempDir() }},
	{"mem", func(t *testing.T) (FS, string) { return NewMemFS(), "/data" }},
}

func forEachFS(t *testing.T, fn func(t *testing.T, fsys FS, dir string)) {
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			fsys, dir := c.new(t)
			fn(t, fsys, dir)
		})
	}
}

var tp0 = TopicPartition{Topic: "t", Partition: 0}

func openStore(t *testing.T, fsys FS, dir string, mut ...func(*Options)) *Store {
	t.Helper()
	opts := Options{Dir: dir, FS: fsys, RetentionCheckInterval: -1}
	for _, m := range mut {
		m(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAppend(t *testing.T, l *Log, b []byte) AppendResult {
	t.Helper()
	res, err := l.Append(context.Background(), b, AppendOptions{})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// readAll reads every batch from offset from to the high watermark.
func readAll(t *testing.T, l *Log, from int64) []BatchHeader {
	t.Helper()
	var out []BatchHeader
	off := from
	for off < l.HighWatermark() {
		res, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("Read(%d): empty below HWM %d", off, res.HighWatermark)
		}
		for b := res.Records; len(b) > 0; {
			h, err := ValidateBatch(b[:min(len(b), int(mustHeader(t, b).Size()))])
			if err != nil {
				t.Fatalf("Read(%d) returned a bad batch: %v", off, err)
			}
			out = append(out, h)
			b = b[h.Size():]
			off = h.LastOffset() + 1
		}
	}
	return out
}

func mustHeader(t *testing.T, b []byte) BatchHeader {
	t.Helper()
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAppendRead(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string) {
		s := openStore(t, fsys, dir)
		l, err := s.CreateLog(tp0, LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		var batches [][]byte
		for i := 0; i < 20; i++ {
			b := makeBatch(t, batchSpec{n: 1 + i%5, valueSize: 100, firstTS: 1000 + int64(i)})
			res := mustAppend(t, l, b)
			if want := l.LogEndOffset() - int64(1+i%5); res.BaseOffset != want {
				t.Fatalf("batch %d: base offset %d, want %d", i, res.BaseOffset, want)
			}
			batches = append(batches, bytes.Clone(b))
		}
		if l.HighWatermark() != l.LogEndOffset() || l.LogEndOffset() != 60 {
			t.Fatalf("HWM %d LEO %d, want 60", l.HighWatermark(), l.LogEndOffset())
		}
		// Every offset reads back starting with the batch containing it, byte-for-byte.
		off := int64(0)
		for i, b := range batches {
			h := mustHeader(t, b)
			for o := off; o <= h.LastOffset(); o++ {
				res, err := l.Read(o, 1)
				if err != nil {
					t.Fatalf("Read(%d): %v", o, err)
				}
				if !bytes.Equal(res.Records, b) {
					t.Fatalf("Read(%d): got %d bytes, want batch %d whole (KIP-74)", o, len(res.Records), i)
				}
			}
			off = h.LastOffset() + 1
		}
		// Reading at the end is empty; past it is out of range.
		if res, err := l.Read(60, 1<<20); err != nil || len(res.Records) != 0 {
			t.Fatalf("Read(LEO) = %d bytes, %v", len(res.Records), err)
		}
		for _, o := range []int64{-1, 61} {
			if _, err := l.Read(o, 100); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("Read(%d) err = %v, want ErrOffsetOutOfRange", o, err)
			}
		}
		// maxBytes stops before the batch that would exceed it.
		res, err := l.Read(0, len(batches[0])+len(batches[1])+10)
		if err != nil || !bytes.Equal(res.Records, append(bytes.Clone(batches[0]), batches[1]...)) {
			t.Fatalf("Read(0, two batches) = %d bytes, %v", len(res.Records), err)
		}
		if got := readAll(t, l, 0); len(got) != 20 {
			t.Fatalf("readAll: %d batches", len(got))
		}
		_ = time.Second
	})
}
