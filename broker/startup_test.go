package broker_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/broker/group"
	"github.com/spoolmq/spool/spooltest"
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
