package group

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/spoolmq/spool/storage"
)

// On-disk format. The coordinator's durable state is a key-value image kept
// in two files in Config.Dir:
//
//	snapshot   every live entry of the image, written atomically
//	           (storage.WriteFileAtomic: snapshot.tmp, fsync, rename, fsync
//	           dir) when the journal grows
//	journal    entries appended since the snapshot, with group commit: one
//	           write + one fsync for all entries queued while the previous
//	           fsync ran
//
// Both files are a sequence of frames (the layout is part of the format):
//
//	+-----------+-------------+---------------------+
//	| len (u32) | crc32c(u32) | payload (len bytes) |   big endian
//	+-----------+-------------+---------------------+
//
// The payload is one entry encoded as JSON. Start-up reads the snapshot, then
// replays the journal, last write wins per key; a torn journal tail (a
// crash during a write: the last frame bad, or only zero bytes after the
// last good one) is truncated at the last good frame, while a bad frame
// with other data after it is damage and stops the start (LoadError with
// the byte offset to cut at). Because
// a snapshot holds the image after every journal entry written before it,
// replaying an old journal over a newer snapshot (a crash between the rename
// and the journal truncation) yields the same image, so compaction needs no
// extra bookkeeping. Start-up reads at most one snapshot plus
// Config.CompactBytes of journal (or twice the snapshot size, whichever is
// larger): it stays bounded however long the broker runs.
//
// All I/O goes through storage.FS, with the directory syncs that make a new
// journal file, the directories and the snapshot's rename durable, so the
// in-memory crash tests cover the coordinator's files as they do the logs.
const (
	snapshotName = "snapshot"
	journalName  = "journal"
	frameHeader  = 8
	maxFrame     = 16 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// entry is one record of the durable image. Key: (Group, Topic, Partition)
// for an offset, (Group) for group metadata. Delete with no Topic removes the
// whole group: its metadata and all of its offsets.
type entry struct {
	Group     string        `json:"g"`
	Topic     string        `json:"t,omitempty"`
	Partition int32         `json:"p,omitempty"`
	Offset    *offsetRecord `json:"o,omitempty"`
	Meta      *groupRecord  `json:"m,omitempty"`
	Delete    bool          `json:"d,omitempty"`
}

// offsetRecord is a committed offset.
type offsetRecord struct {
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"epoch"`
	Metadata    string `json:"meta,omitempty"`
	CommitMs    int64  `json:"ms"`
}

// groupRecord is the durable part of a group: members are not persisted (a
// restart makes every member rejoin), but the generation is, so a member of
// an old generation is fenced, and so is the time the group became empty,
// which starts its offsets' retention clock.
type groupRecord struct {
	ProtocolType string `json:"type,omitempty"`
	Protocol     string `json:"proto,omitempty"`
	Generation   int32  `json:"gen"`
	EmptySinceMs int64  `json:"empty,omitempty"` // 0: had members when written
}

type imageKey struct {
	group, topic string
	partition    int32
	meta         bool
}

func (e *entry) key() imageKey {
	return imageKey{group: e.Group, topic: e.Topic, partition: e.Partition, meta: e.Meta != nil || (e.Delete && e.Topic == "")}
}

// image is the durable state: the journal goroutine's own copy, so that a
// snapshot never needs the coordinator loop.
type image map[imageKey]*entry

func (im image) apply(e *entry) {
	switch {
	case e.Delete && e.Topic == "":
		for k := range im {
			if k.group == e.Group {
				delete(im, k)
			}
		}
	case e.Delete:
		delete(im, e.key())
	default:
		im[e.key()] = e
	}
}

type journalWrite struct {
	entries []*entry
	done    func(error)
}

// journal appends entries durably with group commit and compacts itself into
// a snapshot. write never blocks the caller (the coordinator loop).
type journal struct {
	fs           storage.FS
	dir          string
	noSync       bool
	compactBytes int64

	f        storage.File
	size     int64
	snapSize int64
	img      image

	mu struct {
		sync.Mutex
		queue  []journalWrite
		closed bool
	}
	wake chan struct{}
	done chan struct{}
	err  error // first write error; every later write fails with it
}

// LoadError is a failure to load the coordinator's durable state at start:
// the file, the byte offset where reading stopped and what went wrong. The
// broker refuses to start with it rather than forget committed offsets.
type LoadError struct {
	Path   string
	Offset int64
	Err    error
	// Remedy says what an operator can do; empty: restore the file from a
	// backup or move it away.
	Remedy string
}

func (e *LoadError) Error() string {
	remedy := e.Remedy
	if remedy == "" {
		remedy = "Restore the file from a backup, or move it away to start without the offsets it holds"
	}
	return fmt.Sprintf("group: load %s at byte %d: %v; committed offsets would be lost, so the coordinator does not start. %s",
		e.Path, e.Offset, e.Err, remedy)
}

func (e *LoadError) Unwrap() error { return e.Err }

// openJournal loads the durable image from dir and returns a journal ready to
// append, with the loaded entries.
func openJournal(fsys storage.FS, dir string, noSync bool, compactBytes int64) (*journal, []*entry, error) {
	if err := storage.MkdirAllDurable(fsys, dir); err != nil {
		return nil, nil, fmt.Errorf("group: %w", err)
	}
	j := &journal{fs: fsys, dir: dir, noSync: noSync, compactBytes: compactBytes, img: image{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	snapPath := filepath.Join(dir, snapshotName)
	snap, err := storage.ReadFile(fsys, snapPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, &LoadError{Path: snapPath, Err: err}
	}
	if off, err := readFrames(snap, j.img.apply); err != nil {
		// A snapshot is renamed into place only once complete and synced:
		// a bad one is damage, not a crash artefact. Refuse to start rather
		// than silently forget committed offsets.
		return nil, nil, &LoadError{Path: snapPath, Offset: off, Err: err}
	}
	j.snapSize = int64(len(snap))
	path := filepath.Join(dir, journalName)
	f, err := fsys.OpenReadWrite(path)
	if errors.Is(err, fs.ErrNotExist) {
		if f, err = fsys.Create(path); err == nil {
			// The new file's directory entry must outlive a crash, or so
			// would every commit fsynced into it.
			if err = fsys.SyncDir(dir); err != nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return nil, nil, &LoadError{Path: path, Err: err}
	}
	data, err := readAll(f)
	if err != nil {
		f.Close()
		return nil, nil, &LoadError{Path: path, Err: err}
	}
	good, ferr := readFrames(data, j.img.apply)
	if good < int64(len(data)) && !tornTail(data[good:]) {
		// Good frames were fsynced and acknowledged; a bad one with more
		// data after it is damage, and cutting it would silently drop
		// the commits after it too.
		f.Close()
		return nil, nil, &LoadError{Path: path, Offset: good, Err: ferr, Remedy: fmt.Sprintf(
			"Restore the file from a backup, or cut it at the damage (truncate -s %d %s) to start with the offsets committed before it", good, path)}
	}
	if good < int64(len(data)) { // a torn write: cut it
		err := f.Truncate(good)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, nil, &LoadError{Path: path, Offset: good, Err: fmt.Errorf("truncate the torn tail: %w", err)}
		}
	}
	j.f, j.size = f, good
	entries := make([]*entry, 0, len(j.img))
	for _, e := range j.img {
		entries = append(entries, e)
	}
	go j.run()
	return j, entries, nil
}

// tornTail reports whether rest, the journal from its first bad frame to
// its end, is what a crash during the last write leaves rather than damage:
// the frame is the last one (a write cut short, or one whose pages did not
// all reach the disk), or nothing but zero bytes follow (space the file
// system extended but never wrote). A bad frame with other data after it
// is damage: frames are written in order, and everything before the last
// write was fsynced.
func tornTail(rest []byte) bool {
	if len(rest) < frameHeader {
		return true
	}
	if n := binary.BigEndian.Uint32(rest); n <= maxFrame && int(n) >= len(rest)-frameHeader {
		return true
	}
	for _, b := range rest {
		if b != 0 {
			return false
		}
	}
	return true
}

func readAll(f storage.File) ([]byte, error) {
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if n == 0 {
		return b, nil
	}
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// readFrames applies each good frame and returns the length of the good
// prefix, with an error if the data does not end there.
func readFrames(data []byte, fn func(*entry)) (int64, error) {
	var off int64
	for len(data) > 0 {
		if len(data) < frameHeader {
			return off, errors.New("truncated frame header")
		}
		n := binary.BigEndian.Uint32(data)
		if n > maxFrame || int(n) > len(data)-frameHeader {
			return off, errors.New("truncated frame")
		}
		payload := data[frameHeader : frameHeader+n]
		if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(data[4:]) {
			return off, errors.New("frame checksum mismatch")
		}
		e := new(entry)
		if err := json.Unmarshal(payload, e); err != nil {
			return off, fmt.Errorf("frame: %w", err)
		}
		fn(e)
		data = data[frameHeader+n:]
		off += int64(frameHeader + n)
	}
	return off, nil
}

func appendFrame(dst []byte, e *entry) []byte {
	payload, err := json.Marshal(e)
	if err != nil {
		panic("group: marshal entry: " + err.Error()) // plain structs: cannot fail
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(payload, crcTable))
	return append(dst, payload...)
}

// write queues entries; done is called from the journal goroutine once they
// are durable (or failed).
func (j *journal) write(entries []*entry, done func(error)) {
	j.mu.Lock()
	if j.mu.closed {
		j.mu.Unlock()
		done(errClosed)
		return
	}
	j.mu.queue = append(j.mu.queue, journalWrite{entries, done})
	select { // under the lock: close closes wake under it too
	case j.wake <- struct{}{}:
	default:
	}
	j.mu.Unlock()
}

func (j *journal) run() {
	defer close(j.done)
	for range j.wake {
		j.mu.Lock()
		q := j.mu.queue
		j.mu.queue = nil
		j.mu.Unlock()
		if len(q) > 0 {
			j.flush(q)
		}
	}
}

func (j *journal) flush(q []journalWrite) {
	err := j.err
	if err == nil {
		var buf []byte
		for _, w := range q {
			for _, e := range w.entries {
				buf = appendFrame(buf, e)
			}
		}
		if _, err = j.f.WriteAt(buf, j.size); err == nil && !j.noSync {
			err = j.f.Sync()
		}
		if err != nil {
			// The file may hold part of the batch: refuse everything from now
			// on (the next start truncates the torn tail).
			j.err = fmt.Errorf("group: journal write: %w", err)
			err = j.err
		} else {
			j.size += int64(len(buf))
			for _, w := range q {
				for _, e := range w.entries {
					j.img.apply(e)
				}
			}
		}
	}
	for _, w := range q {
		w.done(err)
	}
	if err == nil && j.size > max(j.compactBytes, 2*j.snapSize) {
		if err := j.compact(); err != nil {
			j.err = err
		}
	}
}

// compact writes the image as the new snapshot and empties the journal.
func (j *journal) compact() error {
	var buf []byte
	for _, e := range j.img {
		buf = appendFrame(buf, e)
	}
	if err := storage.WriteFileAtomic(j.fs, filepath.Join(j.dir, snapshotName), buf); err != nil {
		return fmt.Errorf("group: snapshot: %w", err)
	}
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("group: truncate journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("group: truncate journal: %w", err)
	}
	j.size, j.snapSize = 0, int64(len(buf))
	return nil
}

// close writes what is queued, compacts (so the next start reads only a
// snapshot) and closes the file.
func (j *journal) close() error {
	j.mu.Lock()
	if j.mu.closed {
		j.mu.Unlock()
		return nil
	}
	j.mu.closed = true
	close(j.wake)
	j.mu.Unlock()
	<-j.done
	err := j.err
	if err == nil && j.size > 0 {
		err = j.compact()
	}
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("group: close journal: %w", cerr)
	}
	return err
}
