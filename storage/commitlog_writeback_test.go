package storage

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// writebackFS records the writeback its segment files are asked to start
// (writebackStarter), as OSFS does it with sync_file_range on Linux.
type writebackFS struct {
	*MemFS
	mu     sync.Mutex
	ranges [][2]int64 // [off, off+n) of every segment file
}

type writebackFile struct {
	File
	fs *writebackFS
}

func (w *writebackFS) Create(name string) (File, error) {
	f, err := w.MemFS.Create(name)
	if err != nil || !strings.HasSuffix(name, logSuffix) {
		return f, err
	}
	return writebackFile{f, w}, nil
}

func (f writebackFile) startWriteback(off, n int64) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.ranges = append(f.fs.ranges, [2]int64{off, off + n})
}

// TestCommitLogTricklesWriteback: the small batches the commit log
// acknowledges have their segment's writeback started in steps of about
// checkpointTrickle bytes, in order, each range once, so that a checkpoint
// finds them mostly written; without the commit log, nothing is started for
// them (each round's fsync writes them).
func TestCommitLogTricklesWriteback(t *testing.T) {
	for _, clog := range []bool{true, false} {
		t.Run(fmt.Sprint("commitlog=", clog), func(t *testing.T) {
			fsys := &writebackFS{MemFS: NewMemFS()}
			path := segmentPath
			if clog {
				path = commitLogPath
			}
			s := openStore(t, fsys, "/data", path)
			l := createLogs(t, s, "trickle", 1)[0]
			for l.Size() < 4*checkpointTrickle {
				mustAppend(t, l, makeBatch(t, batchSpec{n: 4, valueSize: 1000}))
			}
			size := l.Size()
			var ranges [][2]int64
			if clog {
				eventually(t, "the writeback of 3 trickles", func() bool {
					fsys.mu.Lock()
					defer fsys.mu.Unlock()
					ranges = append(ranges[:0], fsys.ranges...)
					return len(ranges) >= 3
				})
			}
			fsys.mu.Lock()
			ranges = append(ranges[:0], fsys.ranges...)
			fsys.mu.Unlock()
			if !clog {
				if len(ranges) != 0 {
					t.Fatalf("writeback started for %v without the commit log", ranges)
				}
				return
			}
			sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
			at := int64(0)
			for _, r := range ranges {
				if r[0] != at || r[1]-r[0] < checkpointTrickle || r[1] > size {
					t.Fatalf("writeback ranges %v of a %d-byte segment: want contiguous steps of at least %d bytes from 0", ranges, size, checkpointTrickle)
				}
				at = r[1]
			}
			if size-at >= checkpointTrickle+8<<10 { // at most one step (plus a batch) not yet started
				t.Fatalf("writeback started to %d of %d bytes", at, size)
			}
		})
	}
}
