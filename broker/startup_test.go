package broker_test

import (
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
