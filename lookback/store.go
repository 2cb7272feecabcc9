package lookback

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Record is one Kafka record as the archiver hands it to a Store: where it
// was, its timestamp, key, headers and value. The indexed CloudEvents
// attributes are read from the headers by the store.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte // nil: the record had no key
	Headers   []Header
	Value     []byte // nil: a tombstone
}

// Header is one record header.
type Header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Event is an archived record with its indexed attributes.
type Event struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       []byte    `json:"key"`
	// The CloudEvents attributes and Spool's correlation headers; empty
	// when the record did not carry them.
	ID            string   `json:"id,omitempty"`
	Type          string   `json:"type,omitempty"`
	Source        string   `json:"source,omitempty"`
	Subject       string   `json:"subject,omitempty"`
	CorrelationID string   `json:"correlation_id,omitempty"`
	CausationID   string   `json:"causation_id,omitempty"`
	Headers       []Header `json:"headers"`
	Value         []byte   `json:"value"`
	// Size is the raw size of key, headers and value in bytes.
	Size int `json:"size"`
	// seq orders events in the archive (insertion order); cursors carry it.
	seq int64
}

// Query selects archived events. Zero fields match everything. Every
// attribute filter is an equality; From is inclusive and To exclusive.
type Query struct {
	Topic         string
	Key           []byte // with HasKey: events with exactly this key
	HasKey        bool
	ID            string
	Type          string
	Source        string
	Subject       string
	CorrelationID string
	CausationID   string
	From, To      time.Time
	// Contains keeps events whose value contains this substring.
	Contains string
	// Where keeps events whose JSON value has this string or number at a
	// path (see ParseWhere).
	Where *PathEq
	// Oldest returns the oldest events first; the default is newest first.
	Oldest bool
	// Limit caps the events returned: default 100, at most 1000.
	Limit int
	// Cursor continues a previous search (Page.Next).
	Cursor string
	// MaxScan bounds how many candidate events a search with a payload
	// filter decompresses before returning a partial page with a cursor:
	// default 100,000.
	MaxScan int
}

// Page is one page of search results. Next is empty when there are no more.
type Page struct {
	Events []*Event `json:"events"`
	Next   string   `json:"next,omitempty"`
	// Scanned counts the candidates examined by the payload filter.
	Scanned int `json:"scanned,omitempty"`
}

// Receipt says that a consumer group finished an event, and how (see
// agent.WithReceipts).
type Receipt struct {
	Group     string    `json:"group"`
	EventID   string    `json:"event_id"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Outcome   string    `json:"outcome"`
	Attempts  int       `json:"attempts"`
	Duration  float64   `json:"duration_ms"`
	Time      time.Time `json:"time"`
}

// Stats describes the archive.
type Stats struct {
	Events   int64 `json:"events"`
	RawBytes int64 `json:"raw_bytes"`
	// StoredBytes is the compressed size of the archived payloads (what
	// MaxBytes retention counts).
	StoredBytes int64     `json:"stored_bytes"`
	Oldest      time.Time `json:"oldest,omitzero"`
	Newest      time.Time `json:"newest,omitzero"`
}

// ReplayState is a replay's durable checkpoint (see Replayer).
type ReplayState struct {
	ID       string           `json:"id"`
	Spec     ReplaySpec       `json:"spec"`
	Status   string           `json:"status"` // running, done, failed, cancelled
	Error    string           `json:"error,omitempty"`
	Total    int64            `json:"total"`
	Done     int64            `json:"done"`
	Cursor   string           `json:"cursor,omitempty"` // where the next page starts
	Created  time.Time        `json:"created"`
	Updated  time.Time        `json:"updated"`
	Finished time.Time        `json:"finished,omitzero"`
	ByTopic  map[string]int64 `json:"by_topic,omitempty"`
	// Preview holds a dry run's first events.
	Preview []*Event `json:"preview,omitempty"`
}

// Store is an archive. Every implementation passes the conformance test
// (RunConformance in store_test.go): the embedded Pebble store (the
// default), the SQLite store and the PostgreSQL store.
type Store interface {
	// Append archives records. It is idempotent by (topic, partition,
	// offset): a record already archived is left as it is. When it returns
	// nil every record is durable.
	Append(ctx context.Context, rs []Record) error
	// Search returns one page of events matching q.
	Search(ctx context.Context, q Query) (Page, error)
	// Get returns one event, or an error wrapping ErrNotFound.
	Get(ctx context.Context, topic string, partition int32, offset int64) (*Event, error)
	// Erase removes every event with this key (of topic, if not empty)
	// and returns how many it removed.
	Erase(ctx context.Context, key []byte, topic string) (int64, error)
	// Retain removes events archived before cutoff (if not zero), then
	// the oldest events until the archive holds at most maxBytes of
	// payload (if positive). It returns how many it removed.
	Retain(ctx context.Context, cutoff time.Time, maxBytes int64) (int64, error)
	// AddReceipts records receipts, idempotent by (group, topic,
	// partition, offset).
	AddReceipts(ctx context.Context, rs []Receipt) error
	// Receipts returns the receipts of the events with these ids.
	Receipts(ctx context.Context, eventIDs []string) ([]Receipt, error)
	// SaveReplay creates or updates a replay's checkpoint.
	SaveReplay(ctx context.Context, st ReplayState) error
	// Replay returns a replay's checkpoint, or an error wrapping
	// ErrNotFound.
	Replay(ctx context.Context, id string) (ReplayState, error)
	// Replays returns the replays, newest first.
	Replays(ctx context.Context) ([]ReplayState, error)
	// Stats describes the archive.
	Stats(ctx context.Context) (Stats, error)
	Close() error
}

// ErrNotFound is wrapped by Get and Replay when there is no such thing.
var ErrNotFound = errors.New("lookback: not found")

// cursor is a position in a search: the timestamp and sequence of the last
// event returned.
type cursor struct {
	ts  int64
	seq int64
}

// Cursor layout: version byte 1, varint ts, varint seq, a check byte (the
// sum of the others), so a mistyped cursor is refused rather than read.
func (c cursor) String() string {
	b := []byte{1}
	b = binary.AppendVarint(b, c.ts)
	b = binary.AppendVarint(b, c.seq)
	return base64.RawURLEncoding.EncodeToString(append(b, checkByte(b)))
}

func checkByte(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s ^ 0x5a
}

// ErrBadQuery is wrapped by errors about a malformed query or cursor.
var ErrBadQuery = errors.New("lookback: bad query")

func parseCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 4 || b[0] != 1 || checkByte(b[:len(b)-1]) != b[len(b)-1] {
		return cursor{}, fmt.Errorf("%w: cursor %q is not one this server returned", ErrBadQuery, s)
	}
	b = b[1 : len(b)-1]
	ts, n := binary.Varint(b)
	if n <= 0 {
		return cursor{}, fmt.Errorf("%w: cursor %q is not one this server returned", ErrBadQuery, s)
	}
	seq, m := binary.Varint(b[n:])
	if m <= 0 || n+m != len(b) {
		return cursor{}, fmt.Errorf("%w: cursor %q is not one this server returned", ErrBadQuery, s)
	}
	return cursor{ts, seq}, nil
}

// Open opens the store a specification names, as --store and
// --lookback-store take it:
//
//	postgres://... or postgresql://...  PostgreSQL (OpenPostgres)
//	pebble:DIR                          the Pebble store (OpenPebble)
//	sqlite:DIR                          the SQLite store (OpenSQLite)
//	DIR                                 the embedded default: SQLite if DIR
//	                                    holds an archive.db (made before
//	                                    Pebble became the default), else Pebble
func Open(ctx context.Context, spec string) (Store, error) {
	switch {
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return OpenPostgres(ctx, spec)
	case strings.HasPrefix(spec, "pebble:"):
		return OpenPebble(ctx, strings.TrimPrefix(spec, "pebble:"))
	case strings.HasPrefix(spec, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(spec, "sqlite:"))
	case spec == "":
		return nil, errors.New("lookback: no store named")
	}
	if _, err := os.Stat(filepath.Join(spec, "archive.db")); err == nil {
		return OpenSQLite(ctx, spec)
	}
	return OpenPebble(ctx, spec)
}
