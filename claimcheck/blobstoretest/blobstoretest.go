// Package blobstoretest is the conformance test every claimcheck.BlobStore
// passes: the directory store and the S3 store run it, and so should any
// other implementation.
package blobstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/claimcheck"
)

// Run runs the conformance tests, each on a fresh, empty store from
// newStore.
func Run(t *testing.T, newStore func(t *testing.T) claimcheck.BlobStore) {
	ctx := context.Background()
	t.Run("PutGet", func(t *testing.T) {
		s := newStore(t)
		big := make([]byte, 3<<20+17) // more than one S3 part buffer, odd size
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range big {
			big[i] = byte(rng.Uint32())
		}
		for name, data := range map[string][]byte{"a": []byte("hello"), "empty": {}, "big.bin": big} {
			if err := s.Put(ctx, name, data); err != nil {
				t.Fatalf("put %s: %v", name, err)
			}
			got, err := s.Get(ctx, name)
			if err != nil {
				t.Fatalf("get %s: %v", name, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("get %s: %d bytes back, put %d", name, len(got), len(data))
			}
		}
		if err := s.Put(ctx, "a", []byte("replaced")); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "a"); err != nil || string(got) != "replaced" {
			t.Fatalf("get after replace: %q, %v", got, err)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, "nothing-here"); !errors.Is(err, claimcheck.ErrNotFound) {
			t.Fatalf("get of a missing blob: %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "nothing-here"); err != nil {
			t.Fatalf("delete of a missing blob: %v", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		if err := s.Put(ctx, "gone", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "gone"); !errors.Is(err, claimcheck.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
	})
	t.Run("InvalidName", func(t *testing.T) {
		s := newStore(t)
		for _, name := range []string{"", "../escape", "a/b", ".hidden", "sp ace"} {
			if err := s.Put(ctx, name, []byte("x")); !errors.Is(err, claimcheck.ErrInvalidName) {
				t.Errorf("put %q: %v, want ErrInvalidName", name, err)
			}
			if _, err := s.Get(ctx, name); !errors.Is(err, claimcheck.ErrInvalidName) {
				t.Errorf("get %q: %v, want ErrInvalidName", name, err)
			}
		}
	})
	t.Run("List", func(t *testing.T) {
		s := newStore(t)
		before := time.Now().Add(-time.Minute)
		want := map[string]int64{}
		for i := range 5 {
			name := fmt.Sprint("blob-", i)
			want[name] = int64(i * 10)
			if err := s.Put(ctx, name, make([]byte, i*10)); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]int64{}
		err := s.List(ctx, func(b claimcheck.BlobInfo) error {
			got[b.Name] = b.Size
			if b.Modified.Before(before) || b.Modified.After(time.Now().Add(time.Minute)) {
				t.Errorf("blob %s modified %v, written just now", b.Name, b.Modified)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("list: %v, want %v", got, want)
		}
		stop := errors.New("stop")
		n := 0
		if err := s.List(ctx, func(claimcheck.BlobInfo) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("list stopped by its callback: %v after %d", err, n)
		}
	})
	t.Run("Sweep", func(t *testing.T) {
		s := newStore(t)
		for _, name := range []string{"old-1", "old-2"} {
			if err := s.Put(ctx, name, []byte(name)); err != nil {
				t.Fatal(err)
			}
		}
		// Nothing is older than an hour yet.
		if n, err := claimcheck.Sweep(ctx, s, time.Hour, time.Now()); err != nil || n != 0 {
			t.Fatalf("sweep of fresh blobs: %d deleted, %v", n, err)
		}
		// Two hours on, both are past an hour's retention.
		if n, err := claimcheck.Sweep(ctx, s, time.Hour, time.Now().Add(2*time.Hour)); err != nil || n != 2 {
			t.Fatalf("sweep of old blobs: %d deleted, %v", n, err)
		}
		var left []string
		_ = s.List(ctx, func(b claimcheck.BlobInfo) error { left = append(left, b.Name); return nil })
		if len(left) != 0 {
			t.Fatalf("left after the sweep: %v", left)
		}
		if _, err := claimcheck.Sweep(ctx, s, 0, time.Now()); err == nil {
			t.Fatal("sweep with a zero age accepted")
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 5 {
					name := fmt.Sprintf("c-%d-%d", g, i)
					data := []byte(name)
					if err := s.Put(ctx, name, data); err != nil {
						t.Error(err)
						return
					}
					if got, err := s.Get(ctx, name); err != nil || !bytes.Equal(got, data) {
						t.Errorf("get %s: %q, %v", name, got, err)
					}
				}
			})
		}
		wg.Wait()
		var names []string
		_ = s.List(ctx, func(b claimcheck.BlobInfo) error { names = append(names, b.Name); return nil })
		sort.Strings(names)
		if len(names) != 40 {
			t.Fatalf("listed %d blobs after 40 concurrent puts", len(names))
		}
	})
}

// AgedDir returns a claimcheck.Dir in a new temporary directory, and its
// path, holding one blob per entry of ages (its content is its name)
// last written that long ago: a store for sweep tests.
func AgedDir(t testing.TB, ages map[string]time.Duration) (*claimcheck.Dir, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobs")
	store, err := claimcheck.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, age := range ages {
		if err := store.Put(t.Context(), name, []byte(name)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, name), now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	return store, dir
}

// Names lists the blobs in store, sorted.
func Names(t testing.TB, store claimcheck.BlobStore) []string {
	t.Helper()
	var out []string
	if err := store.List(t.Context(), func(b claimcheck.BlobInfo) error { out = append(out, b.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
