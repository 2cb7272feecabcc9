package storage

import (
	"errors"
	"strings"
	"testing"
)

// A data directory is open in at most one Store at a time: a second Open
// fails with ErrLocked and a message saying what to do, and the directory
// can be opened again once the first Store is closed (or, on MemFS, after a
// crash: the process that held it is gone).
func TestOpenLocksDataDir(t *testing.T) {
	for name, fsys := range map[string]func() (FS, string){
		"os":  func() (FS, string) { return OSFS{}, t.TempDir() },
		"mem": func() (FS, string) { return NewMemFS(), "/data" },
	} {
		t.Run(name, func(t *testing.T) {
			fs, dir := fsys()
			opts := Options{Dir: dir, FS: fs, RetentionCheckInterval: -1}
			first, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(opts)
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("second Open of a locked dir: %v, want ErrLocked", err)
			}
			if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "another spool serve is running") {
				t.Errorf("lock error %q does not name the directory and the cause", msg)
			}
			if name == "os" && !strings.Contains(err.Error(), "by process ") {
				t.Errorf("lock error %q does not name the holder", err)
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			second, err := Open(opts)
			if err != nil {
				t.Fatalf("Open after the holder closed: %v", err)
			}
			if mem, ok := fs.(*MemFS); ok {
				mem.Crash() // the holder dies without Close
				third, err := Open(opts)
				if err != nil {
					t.Fatalf("Open after a crash: %v", err)
				}
				third.Close()
			}
			second.Close()
		})
	}
}

// A failed Open releases the lock it took.
func TestFailedOpenReleasesLock(t *testing.T) {
	fs := NewMemFS()
	boom := errors.New("injected")
	fs.SetInjector(func(op Op, path string) error {
		if op == OpSyncDir {
			return boom
		}
		return nil
	})
	opts := Options{Dir: "/data", FS: fs, RetentionCheckInterval: -1}
	if _, err := Open(opts); !errors.Is(err, boom) {
		t.Fatalf("Open with failing SyncDir: %v", err)
	}
	fs.SetInjector(nil)
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	s.Close()
}
