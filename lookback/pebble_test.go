package lookback

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pebbleRecords(from, to int) []Record {
	var rs []Record
	for i := from; i < to; i++ {
		rs = append(rs, ceRecord("t", int32(i%2), int64(i), fmt.Sprintf("k-%d", i%5), "x", "", t0.Add(time.Duration(i)*time.Millisecond),
			fmt.Sprintf(`{"n":%d}`, i)))
	}
	return rs
}

// A reopened Pebble store knows what it holds: counters, the next block,
// and each partition's highest offset (a redelivery is still ignored).
func TestPebbleReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, pebbleRecords(0, 100)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A redelivery of the last 50 and 50 new ones.
	if err := s.Append(ctx, pebbleRecords(50, 150)); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Events != 150 || st.StoredBytes <= 0 || !st.Oldest.Equal(t0) || !st.Newest.Equal(t0.Add(149*time.Millisecond)) {
		t.Fatalf("stats after reopen: %+v %v", st, err)
	}
	p, err := s.Search(ctx, Query{Topic: "t", Limit: 1000, Oldest: true})
	if err != nil || len(p.Events) != 150 {
		t.Fatalf("search after reopen: %d events, %v", len(p.Events), err)
	}
	for i, e := range p.Events {
		if e.Offset != int64(i) || string(e.Value) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("event %d: %s/%d/%d %q", i, e.Topic, e.Partition, e.Offset, e.Value)
		}
	}
}

// A torn frame at the end of the body log (a crash while writing it,
// before the append returned) is cut off on open; the store goes on
// appending after what it indexed.
func TestPebbleTornBodyLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, pebbleRecords(0, 40)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	seg := filepath.Join(dir, "bodies", segName(1))
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("\x00\x00\x00\x10\x01\x02\x03\x04garbage of a frame that was torn"))
	f.Close()
	s, err = OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi2, _ := os.Stat(seg); fi2.Size() != fi.Size() {
		t.Fatalf("segment is %d bytes after open, want it cut back to %d", fi2.Size(), fi.Size())
	}
	if err := s.Append(ctx, pebbleRecords(40, 80)); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 39, 40, 79} {
		e, err := s.Get(ctx, "t", int32(off%2), off)
		if err != nil || string(e.Value) != fmt.Sprintf(`{"n":%d}`, off) {
			t.Fatalf("t/%d/%d: %+v %v", off%2, off, e, err)
		}
	}
}

// Blocks made durable in the body log whose index batch was lost (a
// crash before Pebble's WAL reached the disk) are indexed again on open:
// the events are there once, positions, counters and high-water marks
// included; a rewritten block an erasure never committed is left out.
func TestPebbleRecoversLostIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*pebbleStore)
	if err := s.Append(ctx, pebbleRecords(0, 30)); err != nil {
		t.Fatal(err)
	}
	s.skipIndex = true
	if err := s.Append(ctx, pebbleRecords(30, 60)); err != nil {
		t.Fatal(err)
	}
	// An erasure's copy of block 1 whose commit never happened: were it
	// taken for a lost block, its 30 events would be there twice.
	var copyOf1 []*Record
	for _, r := range pebbleRecords(0, 30) {
		copyOf1 = append(copyOf1, &r)
	}
	if _, err := s.log.append(compressAll([][]byte{encodeBlock(copyOf1)}), []uint64{1}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	st, err = OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stats, err := st.Stats(ctx)
	if err != nil || stats.Events != 60 {
		t.Fatalf("after recovery: %+v %v, want 60 events", stats, err)
	}
	for _, off := range []int64{0, 29, 30, 59} {
		e, err := st.Get(ctx, "t", int32(off%2), off)
		if err != nil || string(e.Value) != fmt.Sprintf(`{"n":%d}`, off) {
			t.Fatalf("t/%d/%d: %+v %v", off%2, off, e, err)
		}
	}
	p, err := st.Search(ctx, Query{Key: []byte("k-3"), HasKey: true, Limit: 1000})
	if err != nil || len(p.Events) != 12 {
		t.Fatalf("key search after recovery: %d events %v, want 12", len(p.Events), err)
	}
	// Recovered high-water marks: a redelivery is still ignored, and
	// new records go on.
	if err := st.Append(ctx, pebbleRecords(50, 70)); err != nil {
		t.Fatal(err)
	}
	if stats, _ := st.Stats(ctx); stats.Events != 70 {
		t.Fatalf("after a redelivery past recovery: %d events, want 70", stats.Events)
	}
}

// Block numbers are never reused, even after retention removed the
// newest block: a reopened store does not take an old frame for a lost
// one.
func TestPebbleRetainAllThenReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, pebbleRecords(0, 30)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Retain(ctx, t0.Add(time.Hour), 0); err != nil || n != 30 {
		t.Fatalf("retain everything: %d %v", n, err)
	}
	s.Close()
	s, err = OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, _ := s.Stats(ctx); st.Events != 0 {
		t.Fatalf("after reopen: %d events came back", st.Events)
	}
	if err := s.Append(ctx, pebbleRecords(30, 40)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(ctx); st.Events != 10 {
		t.Fatalf("%d events, want 10", st.Events)
	}
}

// A corrupt frame is reported, not returned as an event.
func TestPebbleCorruptFrame(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenPebble(ctx, dir, WithBlockCache(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(ctx, pebbleRecords(0, 10)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "bodies", segName(1)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xde, 0xad}, frameHeader+3)
	f.Close()
	if _, err := s.Get(ctx, "t", 0, 0); !errors.Is(err, errFrame) {
		t.Fatalf("get from a corrupt frame: %v, want errFrame", err)
	}
}

// Erasure leaves no copy of the payload in the body log: the old frame is
// overwritten once the block is rewritten without the erased events.
func TestPebbleEraseWipesBodyLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenPebble(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rs []Record
	for i := range 20 {
		// Stored uncompressible enough to find in the file: the secret
		// repeats nowhere else, but zstd would still keep it literal.
		rs = append(rs, ceRecord("users", 0, int64(i), fmt.Sprintf("u-%d", i%2), "x", "", t0, fmt.Sprintf(`{"secret":"S3CR3T-%d-%d"}`, i%2, i)))
	}
	if err := s.Append(ctx, rs); err != nil {
		t.Fatal(err)
	}
	n, err := s.Erase(ctx, []byte("u-1"), "")
	if err != nil || n != 10 {
		t.Fatalf("erase: %d %v", n, err)
	}
	// Decompress every frame left in the log: none holds u-1's secrets.
	data, err := os.ReadFile(filepath.Join(dir, "bodies", segName(1)))
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for off := 0; off+frameHeader <= len(data); {
		n := int(uint32(data[off])<<24 | uint32(data[off+1])<<16 | uint32(data[off+2])<<8 | uint32(data[off+3]))
		if n == 0 { // a wiped frame: zeros to its end
			off++
			continue
		}
		raw, err := decompress(data[off+frameHeader : off+frameHeader+n])
		if err != nil {
			t.Fatalf("frame at %d: %v", off, err)
		}
		frames++
		if strings.Contains(string(raw), "S3CR3T-1-") {
			t.Fatalf("frame at %d still holds an erased secret", off)
		}
		off += frameHeader + n
	}
	if frames != 1 {
		t.Fatalf("%d live frames, want the rewritten one", frames)
	}
	if e, err := s.Get(ctx, "users", 0, 2); err != nil || !strings.Contains(string(e.Value), "S3CR3T-0-2") {
		t.Fatalf("kept event: %+v %v", e, err)
	}
}

// OpenPebble refuses a SQLite archive's directory; Open picks the engine
// a directory holds.
func TestOpenPicksEngine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sq, err := OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.Append(ctx, pebbleRecords(0, 3)); err != nil {
		t.Fatal(err)
	}
	sq.Close()
	if _, err := OpenPebble(ctx, dir); err == nil || !strings.Contains(err.Error(), "sqlite:") {
		t.Fatalf("OpenPebble on a SQLite archive: %v", err)
	}
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*sqlStore); !ok {
		t.Fatalf("Open(%s) with archive.db: %T, want the SQLite store", dir, s)
	}
	if st, _ := s.Stats(ctx); st.Events != 3 {
		t.Fatalf("existing SQLite archive: %d events", st.Events)
	}
	s.Close()
	fresh := t.TempDir()
	s, err = Open(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*pebbleStore); !ok {
		t.Fatalf("Open of a new directory: %T, want the Pebble store", s)
	}
	if _, err := Open(ctx, ""); err == nil {
		t.Fatal("Open of an empty spec succeeded")
	}
}
