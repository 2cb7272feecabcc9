package claimcheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spoolmq/spool/storage"
)

// Dir is a BlobStore in a local directory, the default store: one file per
// blob, named by the blob, written atomically and durably (a temporary
// file "<name>.tmp", fsync, rename, directory fsync), so after a crash a
// blob is either whole or absent. Several processes on one machine may
// share it.
type Dir struct {
	path string
}

var _ BlobStore = (*Dir)(nil)

// NewDir returns the store in path, creating the directory if needed.
func NewDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("claimcheck: %w", err)
	}
	return &Dir{path: path}, nil
}

// Put implements BlobStore.
func (d *Dir) Put(ctx context.Context, name string, data []byte) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storage.WriteFileAtomic(storage.OSFS{}, filepath.Join(d.path, name), data); err != nil {
		return fmt.Errorf("claimcheck: put %s: %w", name, err)
	}
	return nil
}

// Get implements BlobStore.
func (d *Dir) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(d.path, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("claimcheck: get %s from %s: %w", name, d.path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("claimcheck: get %s: %w", name, err)
	}
	return b, nil
}

// Delete implements BlobStore.
func (d *Dir) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(d.path, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("claimcheck: delete %s: %w", name, err)
	}
	return nil
}

// List implements BlobStore. Temporary files of unfinished Puts are not
// blobs and are not listed.
func (d *Dir) List(ctx context.Context, fn func(BlobInfo) error) error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("claimcheck: list %s: %w", d.path, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(name, ".tmp") || ValidName(name) != nil {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("claimcheck: list %s: %w", d.path, err)
		}
		if err := fn(BlobInfo{Name: name, Size: info.Size(), Modified: info.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// removeStale deletes the temporary files of Puts cut short by a crash
// ("<name>.tmp") last written before cutoff; a Put in progress writes its
// file within moments, so one older than a sweep's age is a leftover.
// Sweep calls it.
func (d *Dir) removeStale(ctx context.Context, cutoff time.Time) error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("claimcheck: list %s: %w", d.path, err)
	}
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue // gone meanwhile, or young
		}
		if err := os.Remove(filepath.Join(d.path, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("claimcheck: remove leftover %s: %w", e.Name(), err))
		}
	}
	return errors.Join(errs...)
}
