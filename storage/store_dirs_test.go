package storage

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Directories of other components in the data dir ("__state") are skipped
// quietly; anything else that is not a partition is reported.
func TestOpenSkipsReservedDirectories(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"__state", "not-a-partition"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if n := len(s.Logs()); n != 0 {
		t.Fatalf("Open found %d logs, want 0", n)
	}
	out := logs.String()
	if strings.Contains(out, "__state") {
		t.Errorf("Open warned about the reserved __state dir:\n%s", out)
	}
	if !strings.Contains(out, "not-a-partition") {
		t.Errorf("Open did not warn about an unknown dir:\n%s", out)
	}
}
