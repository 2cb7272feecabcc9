package claimcheck_test

import (
	"os"
	"path/filepath"
	"testing"

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
