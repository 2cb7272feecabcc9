package producers

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/storage"
)

// batch is a one-record idempotent batch of producer id/epoch at seq.
func batch(id int64, epoch int16, seq int32) []byte {
	rb := kmsg.NewRecordBatch()
	rb.Magic = 2
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = id, epoch, seq
	rb.NumRecords = 1
	rec := kmsg.NewRecord()
	rec.Value = fmt.Appendf(nil, "seq-%d", seq)
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	rb.Records = rec.AppendTo(nil)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

var tp0 = storage.TopicPartition{Topic: "t", Partition: 0}

const stateDir = "/data/__state/producers"

func openAll(t *testing.T, fsys storage.FS) (*storage.Store, *Manager, error) {
	t.Helper()
	st, err := storage.Open(storage.Options{Dir: "/data", FS: fsys, RetentionCheckInterval: -1})
	if err != nil {
		return nil, nil, err
	}
	if _, ok := st.Log(tp0); !ok {
		if _, err := st.CreateLog(tp0, storage.LogConfig{}); err != nil {
			st.Close()
			return nil, nil, err
		}
	}
	m, err := Open(Config{Dir: stateDir, FS: fsys}, st.Logs())
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, m, nil
}

// TestCrashNoDuplicateAccepted crashes the in-memory file system at a random
// operation while one idempotent producer appends batches in sequence and
// the manager snapshots its state now and then (as the periodic snapshot
// does). After recovery, retrying the last acknowledged batches and the one
// in flight at the crash writes nothing twice: every sequence is in the log
// exactly once, each acknowledged one at its acknowledged offset.
func TestCrashNoDuplicateAccepted(t *testing.T) {
	seeds := 50
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { crashProducer(t, seed) })
	}
}

func crashProducer(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	fsys := storage.NewMemFS()
	st, m, err := openAll(t, fsys)
	if err != nil {
		t.Fatal(err)
	}
	resp := m.InitProducerID(kmsg.NewPtrInitProducerIDRequest())
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %d", resp.ErrorCode)
	}
	id, epoch := resp.ProducerID, resp.ProducerEpoch
	fsys.ScheduleCrash(rng.Int64N(120), storage.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 4))})
	l, _ := st.Log(tp0)
	acked := map[int32]int64{} // seq -> offset
	next := int32(0)
	for ; ; next++ {
		res, err := m.Append(context.Background(), l, batch(id, epoch, next), storage.AppendOptions{})
		if err != nil {
			break // the crash
		}
		acked[next] = res.BaseOffset
		if rng.IntN(4) == 0 {
			_ = m.Snapshot(st.Logs())
		}
	}
	m.Close(st.Logs())
	st.Close()
	crashed := fsys.Crashed()
	if crashed == nil {
		t.Fatal("the scheduled crash never happened")
	}

	st, m, err = openAll(t, crashed)
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	defer st.Close()
	defer m.Close(st.Logs())
	if again := m.InitProducerID(kmsg.NewPtrInitProducerIDRequest()); again.ProducerID <= id {
		t.Fatalf("producer ID %d handed out after the crash, but %d was handed out before it", again.ProducerID, id)
	}
	l, _ = st.Log(tp0)
	// The producer retries what it had in flight: the last acknowledged
	// batches (up to the window of five) and the one the crash cut off.
	for seq := max(0, next-4); seq <= next; seq++ {
		res, err := m.Append(context.Background(), l, batch(id, epoch, seq), storage.AppendOptions{})
		if err != nil {
			t.Fatalf("retry of seq %d after the crash: %v", seq, err)
		}
		if off, ok := acked[seq]; ok && res.BaseOffset != off {
			t.Fatalf("retry of acknowledged seq %d answered offset %d, want its original %d", seq, res.BaseOffset, off)
		}
	}
	seen := map[int32]int64{}
	err = l.ScanBatches(0, func(h storage.BatchHeader) error {
		if prev, dup := seen[h.BaseSequence]; dup {
			return fmt.Errorf("seq %d written twice, at offsets %d and %d", h.BaseSequence, prev, h.BaseOffset)
		}
		seen[h.BaseSequence] = h.BaseOffset
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for seq := int32(0); seq <= next; seq++ {
		if _, ok := seen[seq]; !ok {
			t.Fatalf("seq %d missing from the log after the retries (acknowledged: %v)", seq, acked[seq])
		}
	}
}

// TestSnapshotRebuildsState: the state a Manager rebuilds at Open is the
// state it had, whichever way it is rebuilt: from the snapshot written at
// Close, from the log alone (no snapshot, as after losing it), and from an
// older snapshot plus the log after it (as after a crash between periodic
// snapshots). Checked field by field, not only by the dedup behaviour.
func TestSnapshotRebuildsState(t *testing.T) {
	fsys := storage.NewMemFS()
	st, m, err := openAll(t, fsys)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := st.Log(tp0)
	var ids []int64
	for range 3 {
		ids = append(ids, m.InitProducerID(kmsg.NewPtrInitProducerIDRequest()).ProducerID)
	}
	appendSeq := func(id int64, epoch int16, seq int32) {
		if _, err := m.Append(context.Background(), l, batch(id, epoch, seq), storage.AppendOptions{}); err != nil {
			t.Fatalf("append %d/%d/%d: %v", id, epoch, seq, err)
		}
	}
	for seq := range int32(8) { // more than the five-batch window
		appendSeq(ids[0], 0, seq)
		if seq < 3 {
			appendSeq(ids[1], 0, seq)
		}
	}
	if err := m.Snapshot(st.Logs()); err != nil {
		t.Fatal(err)
	}
	older, err := storage.ReadFile(fsys, stateDir+"/"+snapName)
	if err != nil {
		t.Fatal(err)
	}
	appendSeq(ids[1], 1, 0) // an epoch bump drops the old epoch's batches
	appendSeq(ids[2], 0, 0)
	appendSeq(ids[0], 0, 8)
	want := stateOf(m)
	if len(want) != 3 || len(want[ids[0]].Batches) != maxBatches || want[ids[1]].Epoch != 1 || len(want[ids[1]].Batches) != 1 {
		t.Fatalf("state before the restart is not what the test built: %+v", want)
	}
	if err := m.Close(st.Logs()); err != nil {
		t.Fatal(err)
	}
	st.Close()

	for _, c := range []struct {
		name    string
		prepare func()
	}{
		{"snapshot at close", func() {}},
		{"no snapshot", func() { _ = fsys.Remove(stateDir + "/" + snapName) }},
		{"older snapshot+tail", func() { _ = storage.WriteFileAtomic(fsys, stateDir+"/"+snapName, older) }},
	} {
		prepare := c.prepare
		t.Run(c.name, func(t *testing.T) {
			prepare()
			st, m, err := openAll(t, fsys)
			if err != nil {
				t.Fatal(err)
			}
			got := stateOf(m)
			m.Close(nil) // no snapshot: the next case prepares its own
			st.Close()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("rebuilt state differs:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// stateOf copies tp0's producer state without the in-memory lastSeen.
func stateOf(m *Manager) map[int64]producer {
	m.mu.Lock()
	p := m.parts[tp0]
	m.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int64]producer{}
	for id, pr := range maps.All(p.producers) {
		out[id] = producer{Epoch: pr.Epoch, Batches: append([]batchMeta(nil), pr.Batches...)}
	}
	return out
}

// TestPeriodicSnapshot: with Config.Logs set, the state is snapshotted every
// ExpirationCheckInterval, not only at Close, so a start after a crash scans
// only the log written since. Before periodic snapshots existed, the file
// appeared only at Close.
func TestPeriodicSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := storage.NewMemFS()
		st, err := storage.Open(storage.Options{Dir: "/data", FS: fsys, RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l, err := st.CreateLog(tp0, storage.LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := Open(Config{Dir: stateDir, FS: fsys, ExpirationCheckInterval: time.Minute, Logs: st.Logs}, st.Logs())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(nil)
		id := m.InitProducerID(kmsg.NewPtrInitProducerIDRequest()).ProducerID
		if _, err := m.Append(context.Background(), l, batch(id, 0, 0), storage.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := storage.ReadFile(fsys, stateDir+"/"+snapName); err == nil {
			t.Fatal("snapshot written before its period")
		}
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		data, err := storage.ReadFile(fsys, stateDir+"/"+snapName)
		if err != nil {
			t.Fatalf("no snapshot one period after the append: %v", err)
		}
		var f snapshotFile
		if err := json.Unmarshal(data, &f); err != nil || len(f.Partitions) != 1 || f.Partitions[0].Offset != 1 || f.Partitions[0].Producers[id] == nil {
			t.Fatalf("periodic snapshot %s (%v): want partition t-0 covering offset 1 with producer %d", data, err, id)
		}
	})
}
