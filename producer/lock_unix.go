//go:build unix

package producer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive advisory lock on <dir>/LOCK, held until
// unlock is called or the process dies (the kernel releases it on kill -9
// too), so that two producers never share a spool.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("producer: spool: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("producer: spool: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("producer: spool %s is in use by another producer: %w", dir, ErrSpoolLocked)
		}
		return nil, fmt.Errorf("producer: spool: lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
