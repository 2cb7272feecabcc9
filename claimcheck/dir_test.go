package claimcheck_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolmq/spool/claimcheck"
	"github.com/spoolmq/spool/claimcheck/blobstoretest"
)

func newDir(t *testing.T) claimcheck.BlobStore {
	d, err := claimcheck.NewDir(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDirConformance(t *testing.T) { blobstoretest.Run(t, newDir) }

// TestDirSkipsTemporaryFiles: a Put interrupted by a crash leaves a
// "<name>.tmp" file, which is not a blob.
func TestDirSkipsTemporaryFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := claimcheck.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "half.tmp"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := d.List(t.Context(), func(claimcheck.BlobInfo) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("listed %d blobs, %v", n, err)
	}
}

// TestSweepRemovesOldTemporaryFiles: Sweep deletes a crash's leftover
// "<name>.tmp" once it is older than the sweep's age, and leaves a young
// one (a Put in progress) alone; neither counts as a blob.
func TestSweepRemovesOldTemporaryFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := claimcheck.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	oldTmp, youngTmp := filepath.Join(dir, "old.tmp"), filepath.Join(dir, "young.tmp")
	for _, p := range []string{oldTmp, youngTmp} {
		if err := os.WriteFile(p, []byte("torn"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(oldTmp, now.Add(-48*time.Hour), now.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := claimcheck.Sweep(t.Context(), d, 24*time.Hour, now)
	if err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want 0 blobs, no error", n, err)
	}
	if _, err := os.Stat(oldTmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old temporary file still there: %v", err)
	}
	if _, err := os.Stat(youngTmp); err != nil {
		t.Errorf("young temporary file removed: %v", err)
	}
}
