// Package claimcheck moves payloads too large for the broker into a blob
// store and carries a reference in their place (the claim check pattern).
//
// A producer with a Checker (producer.WithClaimCheck) offloads the payload
// of every event larger than the threshold (default 900 KiB, under the
// broker's usual 1 MiB message limit): the payload is written to the
// BlobStore under a fresh name, the event's Data is emptied, and three
// headers describe what it stood for. A consumer agent with the same store
// (agent.WithClaimCheck) resolves the reference before the handler runs, so
// handlers see the payload as published; a record whose blob is missing or
// does not match its size and SHA-256 is dead-lettered with reason
// "claim-missing".
//
// # Headers
//
// The names are part of the wire contract:
//
//	header               value
//	spool_claim_ref      the blob's name in the store ([A-Za-z0-9._-], at most 255 bytes)
//	spool_claim_size     the payload's size in bytes (decimal)
//	spool_claim_sha256   the payload's SHA-256 (lowercase hex)
//
// # Expiry
//
// A blob is deleted by age, not when its record is consumed (other groups
// and replays read it later). TopicRetention computes how long a record of
// the referring topics can be read (retention.ms + segment.ms; never, for
// retention.ms -1 or a compacted topic); a Sweeper deletes, every hour,
// the blobs older than that plus a grace (DefaultGrace, 1h); Sweep is one
// round with a given age. `spool claimcheck sweep` is the same from the
// command line.
package claimcheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/spoolmq/spool/event"
)

// Header names; part of the wire contract.
const (
	HeaderRef    = "spool_claim_ref"
	HeaderSize   = "spool_claim_size"
	HeaderSHA256 = "spool_claim_sha256"
)

// DefaultThreshold is the payload size above which Offload moves a
// payload to the store: 900 KiB, below Kafka's default 1 MiB
// message.max.bytes with room for headers.
const DefaultThreshold = 900 << 10

// Errors; test with errors.Is.
var (
	// ErrNotFound is returned (wrapped) by BlobStore.Get for a name the
	// store does not hold.
	ErrNotFound = errors.New("claimcheck: blob not found")
	// ErrClaimMissing is returned (wrapped) by Resolve when the blob an
	// event refers to is gone or is not what the reference says (size or
	// SHA-256 differ), or the reference itself is malformed: the payload
	// cannot be had, retrying will not help.
	ErrClaimMissing = errors.New("claimcheck: claim missing")
	// ErrInvalidName is returned (wrapped) for a blob name outside
	// [A-Za-z0-9._-]{1,255} or starting with a dot.
	ErrInvalidName = errors.New("claimcheck: invalid blob name")
)

// BlobStore holds payloads by name. Implementations: Dir (a local
// directory) and s3store (S3-compatible object storage). They must be safe
// for concurrent use; the conformance tests in blobstoretest apply to any.
type BlobStore interface {
	// Put stores data under name, durably, replacing a blob of that name.
	Put(ctx context.Context, name string, data []byte) error
	// Get returns the blob's content; an error wrapping ErrNotFound if the
	// store has no blob of that name.
	Get(ctx context.Context, name string) ([]byte, error)
	// Delete removes the blob; deleting a name the store does not hold is
	// not an error.
	Delete(ctx context.Context, name string) error
	// List calls fn for every blob, in no particular order, until fn
	// returns an error, which List returns.
	List(ctx context.Context, fn func(BlobInfo) error) error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Name     string
	Size     int64
	Modified time.Time // when it was written
}

// ValidName reports (as ErrInvalidName) whether name may name a blob:
// references arrive in record headers, so they are checked before any
// store sees them.
func ValidName(name string) error {
	if name == "" || len(name) > 255 || name[0] == '.' {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q", ErrInvalidName, name)
		}
	}
	return nil
}

// Checker offloads large payloads to a store and resolves references to
// them. It is safe for concurrent use.
type Checker struct {
	store     BlobStore
	threshold int
}

// Option configures a Checker.
type Option func(*Checker)

// WithThreshold offloads payloads larger than n bytes, overriding the
// default DefaultThreshold (900 KiB).
func WithThreshold(n int) Option { return func(c *Checker) { c.threshold = n } }

// New returns a Checker on store.
func New(store BlobStore, opts ...Option) *Checker {
	c := &Checker{store: store, threshold: DefaultThreshold}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Store returns the checker's blob store.
func (c *Checker) Store() BlobStore { return c.store }

// Offload moves ev's payload to the store if it is larger than the
// threshold: the blob is written (durably) under a fresh name, ev.Data is
// emptied and the reference headers set. It reports whether it did. An
// event that already carries a reference is left alone.
func (c *Checker) Offload(ctx context.Context, ev *event.Event) (bool, error) {
	if len(ev.Data) <= c.threshold || ev.Header(HeaderRef) != nil {
		return false, nil
	}
	id, err := uuid.NewV7() // time-ordered: a store lists blobs roughly by age
	if err != nil {
		return false, fmt.Errorf("claimcheck: new blob name: %w", err)
	}
	name := id.String()
	if err := c.store.Put(ctx, name, ev.Data); err != nil {
		return false, fmt.Errorf("claimcheck: offload %d bytes of event %s: %w", len(ev.Data), ev.ID, err)
	}
	sum := sha256.Sum256(ev.Data)
	ev.SetHeader(HeaderRef, []byte(name))
	ev.SetHeader(HeaderSize, []byte(strconv.Itoa(len(ev.Data))))
	ev.SetHeader(HeaderSHA256, []byte(hex.EncodeToString(sum[:])))
	ev.Data = nil
	return true, nil
}

// Ref is a parsed claim reference.
type Ref struct {
	Name   string
	Size   int64
	SHA256 [sha256.Size]byte
}

// RefOf returns ev's claim reference, ok false if it has none. A
// reference that is present but malformed is an error wrapping
// ErrClaimMissing.
func RefOf(ev *event.Event) (ref Ref, ok bool, err error) {
	name := ev.Header(HeaderRef)
	if name == nil {
		return Ref{}, false, nil
	}
	ref.Name = string(name)
	if err := ValidName(ref.Name); err != nil {
		return ref, true, fmt.Errorf("%w: %w", ErrClaimMissing, err)
	}
	size, err := strconv.ParseInt(string(ev.Header(HeaderSize)), 10, 64)
	if err != nil || size < 0 {
		return ref, true, fmt.Errorf("%w: blob %s: %s %q is not a size", ErrClaimMissing, ref.Name, HeaderSize, ev.Header(HeaderSize))
	}
	ref.Size = size
	sum, err := hex.DecodeString(string(ev.Header(HeaderSHA256)))
	if err != nil || len(sum) != sha256.Size {
		return ref, true, fmt.Errorf("%w: blob %s: %s %q is not a SHA-256", ErrClaimMissing, ref.Name, HeaderSHA256, ev.Header(HeaderSHA256))
	}
	copy(ref.SHA256[:], sum)
	return ref, true, nil
}

// Resolve replaces the reference ev carries, if any, by its payload: the
// blob is read, checked against the reference's size and SHA-256, and put
// in ev.Data; the reference headers are removed, so ev is the event as it
// was published. It reports whether ev carried a reference. A blob that is
// missing or does not match is an error wrapping ErrClaimMissing; any
// other error (the store did not answer) may succeed when tried again.
func (c *Checker) Resolve(ctx context.Context, ev *event.Event) (bool, error) {
	ref, ok, err := RefOf(ev)
	if !ok || err != nil {
		return ok, err
	}
	data, err := c.store.Get(ctx, ref.Name)
	if errors.Is(err, ErrNotFound) {
		return true, fmt.Errorf("%w: blob %s of event %s: %w", ErrClaimMissing, ref.Name, ev.ID, err)
	}
	if err != nil {
		return true, fmt.Errorf("claimcheck: read blob %s of event %s: %w", ref.Name, ev.ID, err)
	}
	if int64(len(data)) != ref.Size {
		return true, fmt.Errorf("%w: blob %s of event %s has %d bytes, the reference says %d", ErrClaimMissing, ref.Name, ev.ID, len(data), ref.Size)
	}
	if sha256.Sum256(data) != ref.SHA256 {
		return true, fmt.Errorf("%w: blob %s of event %s does not match its SHA-256", ErrClaimMissing, ref.Name, ev.ID)
	}
	ev.Data = data
	hs := ev.Headers[:0:0]
	for _, h := range ev.Headers {
		if h.Key != HeaderRef && h.Key != HeaderSize && h.Key != HeaderSHA256 {
			hs = append(hs, h)
		}
	}
	ev.Headers = hs
	return true, nil
}
