//go:build unix

package storage

import (
	"errors"
	"io"
	"os"
	"strconv"
	"syscall"
)

// Lock implements Locker with flock(2): the lock belongs to the open file,
// so the kernel releases it when the process exits, even by SIGKILL, and a
// stale lock file never keeps a restarted broker out. The file holds the
// holder's process id, for the error message of the next one.
func (OSFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil // closing the file releases the lock
}
