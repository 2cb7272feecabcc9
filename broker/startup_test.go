package broker_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/broker/group"
	"github.com/spoolmq/spool/spooltest"
	"github.com/spoolmq/spool/storage"
)

// A group snapshot the coordinator cannot read stops the start with the
// file, the byte offset and a remedy. Before, the broker started and its
// coordinator answered COORDINATOR_LOAD_IN_PROGRESS forever, so consumers
// hung instead of an operator hearing about it.
func TestStartFailsOnUnreadableGroupState(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "g", 1, nil)
	offs := kadm.Offsets{}
	offs.AddOffset("g", 0, 7, -1)
	if _, err := adm.CommitOffsets(testCtx(t), "grp", offs); err != nil {
		t.Fatal(err)
	}
	dir := srv.DataDir()
	if err := srv.Close(); err != nil { // folds the journal into the snapshot
		t.Fatal(err)
	}
	path := filepath.Join(dir, "__state", "groups", "snapshot")
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 20 {
		t.Fatalf("snapshot after a clean close: %d bytes, %v", len(data), err)
	}
	data[len(data)-3] ^= 0xff // damage inside the last frame's payload
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = startErr(t, broker.Config{DataDir: dir})
	var le *group.LoadError
	if !errors.As(err, &le) || le.Path != path || le.Offset != 0 {
		t.Fatalf("start with a damaged group snapshot: %v, want a group.LoadError for %s at byte 0", err, path)
	}
	wantErr(t, err, path, "at byte 0", "checksum", "Restore the file from a backup")
}

// groupJournal is the coordinator's journal under a broker's data dir.
const groupJournal = "/data/__state/groups/journal"

// journalWithCommits runs a broker on a MemFS, commits offsets 1, 2, 3 of
// topic "j" partition 0 for group "grp" (one journal frame each) and
// returns a copy of the durable state taken while the broker still runs
// (a clean close would fold the journal into the snapshot), with the
// byte offset where each of the journal's frames starts.
func journalWithCommits(t *testing.T) (*storage.MemFS, []int64) {
	t.Helper()
	fsys := storage.NewMemFS()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.DataDir, c.FS = "/data", fsys }))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "j", 1, nil)
	for off := int64(1); off <= 3; off++ {
		offs := kadm.Offsets{}
		offs.AddOffset("j", 0, off, -1)
		if resp, err := adm.CommitOffsets(testCtx(t), "grp", offs); err != nil || resp.Error() != nil {
			t.Fatalf("commit %d: %v %v", off, err, resp.Error())
		}
	}
	clone := fsys.CrashClone(storage.CrashOptions{}) // commits are acknowledged once fsynced
	data, err := storage.ReadFile(clone, groupJournal)
	if err != nil {
		t.Fatal(err)
	}
	var frames []int64
	for off := int64(0); off < int64(len(data)); off += 8 + int64(binary.BigEndian.Uint32(data[off:])) {
		frames = append(frames, off)
	}
	if len(frames) < 3 {
		t.Fatalf("journal of %d bytes has %d frames after 3 commits, want at least 3", len(data), len(frames))
	}
	return clone, frames
}

// rewriteFile replaces the file at path in fsys with data.
func rewriteFile(t *testing.T, fsys *storage.MemFS, path string, data []byte) {
	t.Helper()
	if err := storage.WriteFileAtomic(fsys, path, data); err != nil {
		t.Fatal(err)
	}
}

// committed returns group "grp"'s committed offset of "j" partition 0 on
// a broker started on fsys (-1 if none), and closes that broker.
func committed(t *testing.T, fsys *storage.MemFS) int64 {
	t.Helper()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.DataDir, c.FS = "/data", fsys }))
	adm, _ := newAdmin(t, srv)
	got, err := adm.FetchOffsets(testCtx(t), "grp")
	if err != nil {
		t.Fatal(err)
	}
	o, ok := got.Lookup("j", 0)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if !ok {
		return -1
	}
	return o.At
}

// A damaged frame in the middle of the group journal (good frames after
// it: not a crash's torn tail) stops the start with the journal's path,
// the offset of the bad frame and the remedy, which works: cutting the
// journal there starts with the commits before the damage. Before, the
// start took it for a torn tail and cut it, silently dropping every
// commit after it.
func TestStartFailsOnDamagedGroupJournal(t *testing.T) {
	fsys, frames := journalWithCommits(t)
	data, _ := storage.ReadFile(fsys, groupJournal)
	bad := frames[len(frames)-2] // the frame of commit 2: commit 3 follows it
	data[bad+10] ^= 0xff         // inside its payload
	rewriteFile(t, fsys, groupJournal, data)

	err := startErr(t, broker.Config{DataDir: "/data", FS: fsys})
	var le *group.LoadError
	if !errors.As(err, &le) || le.Path != groupJournal || le.Offset != bad {
		t.Fatalf("start with a damaged group journal: %v, want a group.LoadError for %s at byte %d", err, groupJournal, bad)
	}
	wantErr(t, err, groupJournal, fmt.Sprintf("at byte %d", bad), "checksum",
		"Restore the file from a backup", fmt.Sprintf("truncate -s %d %s", bad, groupJournal))

	rewriteFile(t, fsys, groupJournal, data[:bad]) // the remedy
	if got := committed(t, fsys); got != 1 {
		t.Fatalf("committed offset after cutting the journal at the damage: %d, want 1 (the commit before it)", got)
	}
}

// What a crash during the journal's last write leaves is not an error:
// the start cuts it at the last good frame (so the next write does not
// land after garbage) and keeps every commit before it.
func TestStartCutsTornGroupJournalTail(t *testing.T) {
	// Each tear returns the torn journal, the length it is to be cut to
	// and the committed offset that survives.
	for name, tear := range map[string]func(data []byte, last int64) (torn []byte, keep int, want int64){
		// The last write cut short: half of a frame.
		"half a frame": func(data []byte, last int64) ([]byte, int, int64) {
			return append(data, data[last:last+(int64(len(data))-last)/2]...), len(data), 3
		},
		// The last frame whole in length but not in content.
		"last frame damaged": func(data []byte, last int64) ([]byte, int, int64) {
			data[len(data)-2] ^= 0xff
			return data, int(last), 2
		},
		// Space the file system extended but never wrote.
		"zeros": func(data []byte, last int64) ([]byte, int, int64) {
			return append(data, make([]byte, 100)...), len(data), 3
		},
	} {
		t.Run(name, func(t *testing.T) {
			fsys, frames := journalWithCommits(t)
			data, _ := storage.ReadFile(fsys, groupJournal)
			torn, keep, want := tear(data, frames[len(frames)-1])
			rewriteFile(t, fsys, groupJournal, torn)

			srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.DataDir, c.FS = "/data", fsys }))
			cut, _ := storage.ReadFile(fsys, groupJournal)
			if len(cut) != keep {
				t.Errorf("journal of %d bytes (torn: %d) after start, want it cut to %d", len(cut), len(torn), keep)
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if got := committed(t, fsys); got != want {
				t.Fatalf("committed offset after a torn tail: %d, want %d", got, want)
			}
		})
	}
}

// The broker's committed offsets live on its storage.FS: a crash of the
// in-memory FS at a random point while offsets are committed (through the
// Kafka protocol) loses none that was acknowledged. Before the coordinator
// used the broker's FS, it wrote to the real disk whatever FS the broker
// was given, and this crash could not reach it.
func TestCrashKeepsCommittedOffsetsThroughTheBroker(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			fsys := storage.NewMemFS()
			cfg := func(fs *storage.MemFS) spooltest.Option {
				return spooltest.WithConfig(func(c *broker.Config) { c.DataDir, c.FS = "/data", fs })
			}
			srv := spooltest.Start(t, cfg(fsys))
			adm, _ := newAdmin(t, srv)
			createTopic(t, adm, "c", 2, nil)
			// No retries: a commit the crash fails is not acknowledged, and
			// retrying it against a crashed disk would only wait.
			adm = kadm.NewClient(newClient(t, srv, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second)))
			fsys.ScheduleCrash(rng.Int64N(150), storage.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 12))})
			acked := map[int32]int64{}
			for off := int64(1); off < 1000 && fsys.Crashed() == nil; off++ {
				offs := kadm.Offsets{}
				p := int32(off % 2)
				offs.AddOffset("c", p, off, -1)
				resp, err := adm.CommitOffsets(testCtx(t), "grp", offs)
				if err == nil {
					err = resp.Error()
				}
				if err != nil {
					break // the crash
				}
				acked[p] = off
			}
			srv.Close()
			t.Logf("acknowledged before the crash: %v", acked)
			crashed := fsys.Crashed()
			if crashed == nil {
				t.Fatal("the scheduled crash never happened")
			}
			if _, err := storage.ReadFile(crashed, "/data/__state/groups/journal"); len(acked) > 0 && err != nil {
				t.Fatalf("commits were acknowledged, but the broker's FS has no group journal: %v", err)
			}
			srv = spooltest.Start(t, cfg(crashed))
			adm, _ = newAdmin(t, srv)
			got, err := adm.FetchOffsets(testCtx(t), "grp")
			if err != nil && len(acked) > 0 {
				t.Fatalf("fetch offsets after the crash: %v (acknowledged %v)", err, acked)
			}
			for p, off := range acked {
				if o, ok := got.Lookup("c", p); !ok || o.At < off {
					t.Errorf("partition %d: committed %v after the crash, but %d was acknowledged", p, o.At, off)
				}
			}
		})
	}
}
