package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"sync"
)

// Op names a MemFS operation, for error injection.
type Op int

// MemFS operations passed to an Injector.
const (
	OpCreate Op = iota
	OpOpen
	OpRead
	OpWrite
	OpTruncate
	OpSync
	OpSyncDir
	OpRemove
	OpRename
	OpMkdir
)

var opNames = [...]string{"create", "open", "read", "write", "truncate", "sync", "syncdir", "remove", "rename", "mkdir"}

// String names the operation.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// ErrCrashed is returned by every operation of a MemFS after a scheduled crash.
var ErrCrashed = errors.New("storage: memfs: crashed")

// An Injector decides whether a MemFS operation fails: a non-nil error is
// returned by the operation, which then has no effect. It is called with the
// MemFS lock held and must not call back into the MemFS.
type Injector func(op Op, path string) error

// MemFS is an in-memory FS for tests. It models what survives a crash the way
// a POSIX file system does: a file's contents survive up to its last Sync, and a
// directory entry (create, rename, remove) survives once its directory was
// synced with SyncDir. Crash and CrashClone drop everything else.
// Paths are slash-separated; relative paths are taken from the root.
type MemFS struct {
	mu       sync.Mutex
	root     *memNode
	gen      int // bumped by Crash; handles of older generations fail
	inject   Injector
	crashAt  int64 // mutating ops left before a scheduled crash; <0 = none
	crashOpt CrashOptions
	crashed  *MemFS              // the state captured by a scheduled crash
	locks    map[string]*memLock // held by Lock; a crash drops them
}

type memNode struct {
	isDir    bool
	children map[string]*memNode // current entries (directories)
	durable  map[string]*memNode // entries as of the last SyncDir
	data     []byte
	synced   []byte
	dirtyLo  int // lowest offset changed since the last Sync
	dirtyHi  int // end of the highest write since the last Sync (math.MaxInt: unknown)
}

func newDir() *memNode {
	return &memNode{isDir: true, children: map[string]*memNode{}, durable: map[string]*memNode{}}
}

// NewMemFS returns an empty in-memory file system.
func NewMemFS() *MemFS { return &MemFS{root: newDir(), crashAt: -1} }

var _ FS = (*MemFS)(nil)

// SetInjector installs (or, with nil, removes) an Injector.
func (m *MemFS) SetInjector(inj Injector) {
	m.mu.Lock()
	m.inject = inj
	m.mu.Unlock()
}

// CrashOptions shape the state a crash leaves behind.
type CrashOptions struct {
	// Rand, if set, keeps a random prefix of each file's unsynced appended bytes,
	// as a disk may persist part of a write: a torn tail.
	Rand *rand.Rand
}

// ScheduleCrash makes the file system crash after ops more mutating
// operations (write, truncate, sync, create, rename, remove, ...): the durable
// state at that moment is captured atomically (see CrashClone) and every later
// operation fails with ErrCrashed. Crashed returns the captured state.
func (m *MemFS) ScheduleCrash(ops int64, opts CrashOptions) {
	m.mu.Lock()
	m.crashAt = ops
	m.crashOpt = opts
	m.mu.Unlock()
}

// Crashed returns the state captured by a scheduled crash, or nil if it has not happened.
func (m *MemFS) Crashed() *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// Crash resets the file system to its durable state in place, as a power loss
// would. Files opened before the crash fail every later operation, but a
// store still running could create new files: stop using it first, or use
// CrashClone or ScheduleCrash while it runs.
func (m *MemFS) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.root = cloneDurable(m.root, CrashOptions{})
	m.gen++
	m.locks = nil // the process holding them is gone
}

// CrashClone returns a new MemFS holding what would survive a crash now; the
// receiver is unchanged.
func (m *MemFS) CrashClone(opts CrashOptions) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &MemFS{root: cloneDurable(m.root, opts), crashAt: -1}
}

func cloneDurable(d *memNode, opts CrashOptions) *memNode {
	out := newDir()
	names := make([]string, 0, len(d.durable))
	for name := range d.durable {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic use of opts.Rand
	for _, name := range names {
		n := d.durable[name]
		var c *memNode
		if n.isDir {
			c = cloneDurable(n, opts)
		} else {
			keep := n.synced
			if opts.Rand != nil && n.dirtyLo >= len(n.synced) && len(n.data) > len(n.synced) {
				extra := opts.Rand.IntN(len(n.data) - len(n.synced) + 1)
				keep = n.data[:len(n.synced)+extra]
			}
			c = &memNode{data: append([]byte(nil), keep...)}
			c.synced = append([]byte(nil), c.data...)
			c.dirtyLo = len(c.data)
		}
		out.children[name] = c
		out.durable[name] = c
	}
	return out
}

// checkLocked runs crash scheduling and the injector for one operation.
func (m *MemFS) checkLocked(op Op, p string) error {
	if m.crashed != nil {
		return ErrCrashed
	}
	if m.crashAt >= 0 && op != OpRead && op != OpOpen {
		if m.crashAt == 0 {
			m.crashed = &MemFS{root: cloneDurable(m.root, m.crashOpt), crashAt: -1}
			return ErrCrashed
		}
		m.crashAt--
	}
	if m.inject != nil {
		return m.inject(op, p)
	}
	return nil
}

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (m *MemFS) lookupLocked(p string) *memNode {
	p = clean(p)
	n := m.root
	if p == "" {
		return n
	}
	for _, part := range strings.Split(p, "/") {
		if !n.isDir {
			return nil
		}
		n = n.children[part]
		if n == nil {
			return nil
		}
	}
	return n
}

func (m *MemFS) parentLocked(p string) (*memNode, string, error) {
	p = clean(p)
	dir, base := path.Split(p)
	d := m.lookupLocked(dir)
	if d == nil || !d.isDir || base == "" {
		return nil, "", &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return d, base, nil
}

func (m *MemFS) handle(n *memNode, name string, ro bool) *memFile {
	return &memFile{fs: m, node: n, name: name, gen: m.gen, ro: ro}
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(OpCreate, name); err != nil {
		return nil, &fs.PathError{Op: "create", Path: name, Err: err}
	}
	d, base, err := m.parentLocked(name)
	if err != nil {
		return nil, err
	}
	n := d.children[base]
	if n != nil && n.isDir {
		return nil, &fs.PathError{Op: "create", Path: name, Err: errors.New("is a directory")}
	}
	if n == nil {
		n = &memNode{}
		d.children[base] = n
	} else {
		n.data = n.data[:0]
		n.dirtyLo, n.dirtyHi = 0, math.MaxInt
	}
	return m.handle(n, name, false), nil
}

func (m *MemFS) open(name string, ro bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(OpOpen, name); err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	n := m.lookupLocked(name)
	if n == nil || n.isDir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return m.handle(n, name, ro), nil
}

// OpenReadWrite implements FS.
func (m *MemFS) OpenReadWrite(name string) (File, error) { return m.open(name, false) }

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) { return m.open(name, true) }

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(OpRemove, name); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	d, base, err := m.parentLocked(name)
	if err != nil {
		return err
	}
	n := d.children[base]
	if n == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.isDir && len(n.children) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
	}
	delete(d.children, base)
	return nil
}

// RemoveAll implements FS.
func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(OpRemove, name); err != nil {
		return &fs.PathError{Op: "removeall", Path: name, Err: err}
	}
	d, base, err := m.parentLocked(name)
	if err != nil {
		return nil
	}
	delete(d.children, base)
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(OpRename, oldname); err != nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: err}
	}
	od, ob, err := m.parentLocked(oldname)
	if err != nil {
		return err
	}
	n := od.children[ob]
	if n == nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	nd, nb, err := m.parentLocked(newname)
	if err != nil {
		return err
	}
	if old := nd.children[nb]; old != nil && old.isDir && len(old.children) > 0 {
		return &fs.PathError{Op: "rename", Path: newname, Err: errors.New("directory not empty")}
	}
	delete(od.children, ob)
	nd.children[nb] = n
	return nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(OpMkdir, dir); err != nil {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	p := clean(dir)
	if p == "" {
		return nil
	}
	n := m.root
	for _, part := range strings.Split(p, "/") {
		c := n.children[part]
		if c == nil {
			c = newDir()
			n.children[part] = c
		} else if !c.isDir {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
		}
		n = c
	}
	return nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(OpOpen, dir); err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: err}
	}
	d := m.lookupLocked(dir)
	if d == nil || !d.isDir {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	out := make([]DirEntry, 0, len(d.children))
	for name, n := range d.children {
		out = append(out, DirEntry{Name: name, IsDir: n.isDir})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(OpSyncDir, dir); err != nil {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: err}
	}
	d := m.lookupLocked(dir)
	if d == nil || !d.isDir {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	d.durable = make(map[string]*memNode, len(d.children))
	for name, n := range d.children {
		d.durable[name] = n
	}
	return nil
}

type memFile struct {
	fs     *MemFS
	node   *memNode
	name   string
	gen    int
	ro     bool
	closed bool
}

func (f *memFile) checkLocked(op Op) error {
	if f.closed {
		return &fs.PathError{Op: op.String(), Path: f.name, Err: fs.ErrClosed}
	}
	if f.gen != f.fs.gen {
		return &fs.PathError{Op: op.String(), Path: f.name, Err: ErrCrashed}
	}
	if err := f.fs.checkLocked(op, f.name); err != nil {
		return &fs.PathError{Op: op.String(), Path: f.name, Err: err}
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked(OpRead); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked(OpWrite); err != nil {
		return 0, err
	}
	if f.ro || off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrInvalid}
	}
	n := f.node
	end := int(off) + len(p)
	if end > len(n.data) {
		if end > cap(n.data) {
			grown := make([]byte, len(n.data), max(end, 2*cap(n.data)))
			copy(grown, n.data)
			n.data = grown
		}
		n.data = n.data[:end]
	}
	copy(n.data[off:], p)
	n.dirtyLo = min(n.dirtyLo, int(off))
	n.dirtyHi = max(n.dirtyHi, end)
	return len(p), nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "stat", Path: f.name, Err: fs.ErrClosed}
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked(OpTruncate); err != nil {
		return err
	}
	n := f.node
	if int(size) <= len(n.data) {
		n.data = n.data[:size]
	} else {
		n.data = append(n.data, make([]byte, int(size)-len(n.data))...)
	}
	n.dirtyLo = min(n.dirtyLo, int(size))
	n.dirtyHi = math.MaxInt
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked(OpSync); err != nil {
		return err
	}
	n := f.node
	lo := min(n.dirtyLo, len(n.synced), len(n.data))
	if len(n.synced) == len(n.data) && n.dirtyHi <= len(n.data) {
		// Same size, and nothing after dirtyHi changed: copy only the
		// changed range (a prewritten commit log file is 16 MiB).
		if lo < n.dirtyHi {
			copy(n.synced[lo:n.dirtyHi], n.data[lo:n.dirtyHi])
		}
	} else {
		n.synced = append(n.synced[:lo], n.data[lo:]...)
	}
	n.dirtyLo, n.dirtyHi = len(n.data), 0
	return nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}
