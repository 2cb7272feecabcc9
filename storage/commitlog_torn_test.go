package storage

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCommitLogTornTail: a power loss in the middle of a commit log round
// leaves a torn record after the last durable one. Recovery replays every
// acknowledged batch (their segments were never fsynced, so the commit log
// is the only copy), stops at the torn record, and does not replay a
// well-formed record that follows it on the disk (a round after a torn one
// was never acknowledged); the store then appends after the last durable
// batch, and a second crash keeps those appends too.
func TestCommitLogTornTail(t *testing.T) {
	for _, tear := range []struct {
		name string
		torn func(rec []byte) []byte // what of the next round reached the disk
	}{
		{"half a record", func(rec []byte) []byte { return rec[:len(rec)/2] }},
		{"header only", func(rec []byte) []byte { return rec[:commitRecordHeader] }},
		{"bad checksum", func(rec []byte) []byte {
			bad := append([]byte(nil), rec...)
			bad[len(bad)-1] ^= 0xff
			return bad
		}},
	} {
		t.Run(tear.name, func(t *testing.T) {
			fsys := NewMemFS()
			small := func(o *Options) { o.CommitLogFileBytes = 64 << 10 } // files are prewritten: keep the clones small
			s := openStore(t, fsys, "/data", small, commitLogPath)
			tps := []TopicPartition{{Topic: "torn", Partition: 0}, {Topic: "torn", Partition: 1}}
			var logs []*Log
			for _, tp := range tps {
				l, err := s.CreateLog(tp, LogConfig{})
				if err != nil {
					t.Fatal(err)
				}
				logs = append(logs, l)
			}
			acked := map[TopicPartition][]uint32{} // CRCs of the acknowledged batches, in order
			for i := range 40 {
				l := logs[i%2]
				b := makeBatch(t, batchSpec{n: 3, valueSize: 200, firstTS: int64(i)})
				mustAppend(t, l, b)
				acked[l.TopicPartition()] = append(acked[l.TopicPartition()], mustHeader(t, b).CRC)
			}
			if st := s.Stats(); st.CommitLog.Appends != 40 || st.SegmentFsyncs != 0 {
				t.Fatalf("stats %+v: want all 40 appends through the commit log, no segment fsync", st)
			}

			// The power loss: what was fsynced survives, then the torn
			// round and a well-formed round after it.
			crashed := fsys.CrashClone(CrashOptions{})
			path, end := lastCommitFile(t, crashed)
			// Each at the place its log's next batch would go, so that a
			// replay of either would show as one batch too many.
			next := appendCommitRecord(nil, tps[0], 0, logs[0].Size(), nextBatch(t, logs[0]))
			torn := tear.torn(next)
			later := appendCommitRecord(nil, tps[1], 0, logs[1].Size(), nextBatch(t, logs[1]))
			seq, _ := commitFileSeq(filepath.Base(path))
			sealCommitRecords(later, seq) // well-formed in this file
			f, err := crashed.OpenReadWrite(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(append(torn, later...), int64(end)); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			_ = f.Close()

			s2 := openStore(t, crashed, "/data", small)
			for _, tp := range tps {
				l, _ := s2.Log(tp)
				checkBatches(t, l, acked[tp])
			}
			// Appends go on after the last durable batch, and survive a
			// second crash.
			for i, tp := range tps {
				l, _ := s2.Log(tp)
				b := makeBatch(t, batchSpec{n: 2, valueSize: 50, firstTS: int64(100 + i)})
				res := mustAppend(t, l, b)
				if want := int64(len(acked[tp]) * 3); res.BaseOffset != want {
					t.Fatalf("%s: append after recovery at offset %d, want %d", tp, res.BaseOffset, want)
				}
				acked[tp] = append(acked[tp], mustHeader(t, b).CRC)
			}
			s3 := openStore(t, crashed.CrashClone(CrashOptions{}), "/data", small)
			for _, tp := range tps {
				l, _ := s3.Log(tp)
				checkBatches(t, l, acked[tp])
			}
		})
	}
}

// nextBatch is a one-record batch numbered as l's next append would be.
func nextBatch(t *testing.T, l *Log) []byte {
	t.Helper()
	b := makeBatch(t, batchSpec{n: 1, valueSize: 10})
	binary.BigEndian.PutUint64(b, uint64(l.LogEndOffset())) // base offset: outside the CRC
	return b
}

// lastCommitFile returns the commit log file holding the newest records
// and where its well-formed records end.
func lastCommitFile(t *testing.T, fsys FS) (string, int) {
	t.Helper()
	dir := filepath.Join("/data", commitLogDir)
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	path, end := "", 0
	for _, e := range ents {
		p := filepath.Join(dir, e.Name)
		data, err := ReadFile(fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		off := 0
		for {
			seq, _ := commitFileSeq(e.Name)
			_, next, ok := parseCommitRecord(data, off, commitMask(seq))
			if !ok {
				break
			}
			off = next
		}
		if off > 0 && p > path { // names sort by sequence
			path, end = p, off
		}
	}
	if path == "" {
		t.Fatal("no commit log records after the appends")
	}
	return path, end
}

// checkBatches fails unless l holds exactly the batches with these CRCs,
// in order.
func checkBatches(t *testing.T, l *Log, crcs []uint32) {
	t.Helper()
	got := readAll(t, l, 0)
	if len(got) != len(crcs) {
		t.Fatalf("%s: %d batches after recovery, want %d (end offset %d)", l.TopicPartition(), len(got), len(crcs), l.LogEndOffset())
	}
	for i, h := range got {
		if h.CRC != crcs[i] {
			t.Fatalf("%s: batch %d is %s, want crc %08x", l.TopicPartition(), i, fmt.Sprintf("crc %08x at %d", h.CRC, h.BaseOffset), crcs[i])
		}
	}
	if l.LogEndOffset() != l.HighWatermark() {
		t.Fatalf("%s: end offset %d above the high watermark %d after recovery", l.TopicPartition(), l.LogEndOffset(), l.HighWatermark())
	}
}

// TestCommitLogRecycledFile: a checkpointed commit log file is reused for a
// later sequence and still holds its earlier records past the new ones; the
// earlier records are well formed (here, with batches of one size, one
// starts exactly where the new records end) but sealed with the earlier
// sequence, so after a crash the replay reads the new records only, and the
// log recovers exactly the acknowledged batches.
func TestCommitLogRecycledFile(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, "/data", commitLogPath, func(o *Options) { o.CommitLogFileBytes = 64 << 10 })
	l := createLogs(t, s, "recycle", 1)[0]
	var crcs []uint32
	reused := func() *commitFile { // the current file, once it is a reused one with a record
		s.clog.rmu.Lock()
		defer s.clog.rmu.Unlock()
		if f := s.clog.cur; f != nil && f.reused != 0 && f.pos > 0 {
			return f
		}
		return nil
	}
	var cur *commitFile
	recLen := 0 // of each commit log record
	for i := 0; cur == nil; i++ {
		if i == 2000 {
			t.Fatalf("no reused commit log file after %d appends; stats %+v", i, s.Stats())
		}
		b := makeBatch(t, batchSpec{n: 1, valueSize: 500}) // every record the same size
		mustAppend(t, l, b)
		crcs = append(crcs, mustHeader(t, b).CRC)
		recLen = commitRecordHeader + commitRecordFixed + len("recycle") + len(b)
		cur = reused()
	}
	path, pos, earlier := cur.path, int(cur.pos), cur.reused
	if st := s.Stats().CommitLog; st.RecycledFiles == 0 {
		t.Fatalf("commit log stats %+v: a file was reused but not counted", st)
	}

	crashed := fsys.CrashClone(CrashOptions{})
	data, err := ReadFile(crashed, path)
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := commitFileSeq(filepath.Base(path))
	n := 0
	for off := 0; ; n++ {
		_, next, ok := parseCommitRecord(data, off, commitMask(seq))
		if !ok {
			break
		}
		off = next
	}
	if n*recLen != pos {
		t.Fatalf("%s: %d records of %d bytes read, %d bytes written in its new use", path, n, recLen, pos)
	}
	if _, _, ok := parseCommitRecord(data, pos, commitMask(earlier)); !ok {
		t.Fatalf("%s: no record of its earlier use (sequence %d) after the new ones: the test shows nothing", path, earlier)
	}
	s2 := openStore(t, crashed, "/data")
	l2, _ := s2.Log(l.TopicPartition())
	checkBatches(t, l2, crcs)
}

// TestCommitLogRecycleRenameFails: when renaming a checkpointed file for
// reuse fails (setAside), or renaming a free file to its new sequence does
// (reuse), the file is kept or dropped whole, never handed on closed: every
// append still succeeds, files are recycled once renames work again, and
// everything acknowledged survives a crash.
func TestCommitLogRecycleRenameFails(t *testing.T) {
	for _, failing := range []struct{ name, from string }{
		{"set aside", commitLogSuffix}, // <seq>.clog -> <seq>.free
		{"reuse", commitFreeSuffix},    // <seq>.free -> <seq>.clog
	} {
		t.Run(failing.name, func(t *testing.T) {
			fsys := NewMemFS()
			s := openStore(t, fsys, "/data", commitLogPath, func(o *Options) { o.CommitLogFileBytes = 64 << 10 })
			l := createLogs(t, s, "rename", 1)[0]
			var mu sync.Mutex
			failed := 0
			fsys.SetInjector(func(op Op, path string) error {
				mu.Lock()
				defer mu.Unlock()
				if op == OpRename && strings.HasSuffix(path, failing.from) && failed < 2 {
					failed++
					return errDiskFull
				}
				return nil
			})
			var crcs []uint32
			for l.Size() < 1<<20 {
				b := makeBatch(t, batchSpec{n: 2, valueSize: 500, firstTS: int64(len(crcs))})
				mustAppend(t, l, b)
				crcs = append(crcs, mustHeader(t, b).CRC)
			}
			eventually(t, "a recycled file", func() bool { return s.Stats().CommitLog.RecycledFiles > 0 })
			mu.Lock()
			if failed != 2 {
				t.Fatalf("%d renames failed, want 2", failed)
			}
			mu.Unlock()
			s2 := openStore(t, fsys.CrashClone(CrashOptions{}), "/data")
			l2, _ := s2.Log(l.TopicPartition())
			checkBatches(t, l2, crcs)
		})
	}
}
