package storage

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
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
			_, next, ok := parseCommitRecord(data, off)
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
