package storage

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// lockFile is the data directory's lock (format): held by the process that
// has the directory open, so that two brokers never write the same logs.
const lockFile = ".lock"

// ErrLocked is returned by Open when another process (or another Store in
// this one) holds the data directory.
var ErrLocked = errors.New("data directory is in use")

// Locker is implemented by file systems that can lock a file for exclusive
// use by one holder. OSFS locks with flock(2), which the kernel releases when
// the process exits, however it exits; MemFS keeps its locks in memory and
// drops them in a crash. Lock returns ErrLocked if name is held.
type Locker interface {
	Lock(name string) (io.Closer, error)
}

// lockDir takes the data directory's lock, if fsys can lock.
func lockDir(fsys FS, dir string) (io.Closer, error) {
	lk, ok := fsys.(Locker)
	if !ok {
		return nopCloser{}, nil
	}
	path := filepath.Join(dir, lockFile)
	c, err := lk.Lock(path)
	if errors.Is(err, ErrLocked) {
		holder := ""
		if b, rerr := ReadFile(fsys, path); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			holder = " by process " + strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("storage: %s is held%s: %w; another spool serve is running on this data directory (stop it, or give this one another data directory)", path, holder, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: lock data dir: %w", err)
	}
	return c, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// Lock implements Locker: one holder per name until its Close or a crash.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := clean(name)
	if m.locks == nil {
		m.locks = map[string]*memLock{}
	}
	if _, held := m.locks[p]; held {
		return nil, ErrLocked
	}
	l := &memLock{m: m, name: p, gen: m.gen}
	m.locks[p] = l
	return l, nil
}

type memLock struct {
	m    *MemFS
	name string
	gen  int
}

func (l *memLock) Close() error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.m.locks[l.name] == l {
		delete(l.m.locks, l.name)
	}
	return nil
}
