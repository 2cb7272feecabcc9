//go:build linux

package storage

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCommitLogFilesPrewritten: the commit log's files take records only
// once they are written full of zeros (allocated on disk, not sparse) and
// synced, so a round's fdatasync flushes data and never also commits a new
// file size or block allocation (an ext4 journal commit): on a real file
// system every file has its full size and its blocks after appends, and
// on MemFS a crash right after the appends finds the files at full size.
func TestCommitLogFilesPrewritten(t *testing.T) {
	const fileBytes = 256 << 10
	small := func(o *Options) { o.CommitLogFileBytes = fileBytes }
	dir := t.TempDir()
	s := openStore(t, OSFS{}, dir, small, commitLogPath)
	l, err := s.CreateLog(tp0, LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		mustAppend(t, l, makeBatch(t, batchSpec{n: 2, valueSize: 100, firstTS: int64(i)}))
	}
	if st := s.Stats(); st.CommitLog.Appends != 50 {
		t.Fatalf("stats %+v: want the appends through the commit log", st)
	}
	ents, err := os.ReadDir(filepath.Join(dir, commitLogDir))
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), commitLogSuffix) {
			continue
		}
		files++
		fi, err := os.Stat(filepath.Join(dir, commitLogDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Size() != fileBytes || st.Blocks*512 < fileBytes {
			t.Fatalf("%s: size %d, %d bytes allocated; want %d of both (written full, not sparse)", e.Name(), fi.Size(), st.Blocks*512, fileBytes)
		}
	}
	if files == 0 {
		t.Fatal("no commit log file after 50 appends")
	}

	m := NewMemFS()
	ms := openStore(t, m, "/data", small, commitLogPath)
	ml, err := ms.CreateLog(tp0, LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		mustAppend(t, ml, makeBatch(t, batchSpec{n: 2, valueSize: 100, firstTS: int64(i)}))
	}
	crashed := m.CrashClone(CrashOptions{})
	path, end := lastCommitFile(t, crashed)
	f, err := crashed.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if size, err := f.Size(); err != nil || size != fileBytes || end == 0 {
		t.Fatalf("after a crash %s is %d bytes (%v) with records to %d; want its full %d bytes durable", path, size, err, end, fileBytes)
	}
}
