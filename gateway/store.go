package gateway

import (
	"context"
	"errors"
	"time"
)

// State is where a request is in its lifecycle (docs/gateway.md has the
// diagram). The names are part of the HTTP API.
type State string

// The request states. Accepted and Pending are open; the others are final
// and never change again.
const (
	// Accepted: the request is stored and its command is being produced.
	Accepted State = "accepted"
	// Pending: the command is acknowledged by the broker (acks=all); the
	// gateway waits for the reply.
	Pending State = "pending"
	// Succeeded: a reply with spool_status ok (or none) arrived.
	Succeeded State = "succeeded"
	// Failed: a reply with spool_status error arrived (the service's
	// handler failed or dead-lettered the command), or the command could
	// not be produced.
	Failed State = "failed"
	// Cancelled: DELETE on the request before it finished.
	Cancelled State = "cancelled"
	// Expired: no reply before the request's expiry time.
	Expired State = "expired"
)

// Final reports whether s is a final state.
func (s State) Final() bool { return s != Accepted && s != Pending }

// Callback delivery states.
const (
	CallbackNone      = ""          // no callback URL, or the request is still open
	CallbackPending   = "pending"   // due or scheduled for another attempt
	CallbackDelivered = "delivered" // the target answered 2xx
	CallbackGone      = "gone"      // the target answered 410: no more attempts
	CallbackDead      = "dead"      // every attempt failed: dead-lettered
)

// Request is one asynchronous command as the store keeps it.
type Request struct {
	ID             string
	Topic          string
	Principal      string // who submitted it ("" when tokens are off)
	IdempotencyKey string // "" when none was given; unique among stored requests
	State          State
	ContentType    string // of Result
	Result         []byte // the reply's value (Succeeded)
	Error          string // why it Failed, was Cancelled or Expired
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ExpiresAt      time.Time
	// Where the command record landed (-1 before it is acknowledged).
	Partition int32
	Offset    int64

	CallbackURL      string
	CallbackState    string
	CallbackAttempts []Attempt
	CallbackNextAt   time.Time
}

// Attempt is one callback delivery attempt.
type Attempt struct {
	At     time.Time `json:"at"`
	Status int       `json:"status,omitempty"` // HTTP status; 0 when no response
	Error  string    `json:"error,omitempty"`  // transport error or non-2xx summary
}

// Transition is a conditional state change: it applies only while the
// request is in one of From.
type Transition struct {
	From        []State
	To          State
	ContentType string
	Result      []byte
	Error       string
	Partition   int32 // with To == Pending: where the command landed
	Offset      int64
	At          time.Time
	// Relaxed lets the store return before the change is on disk: a power
	// loss may lose it, together with every later relaxed change and never
	// one without the other (the store keeps the order of its changes). For
	// changes the gateway makes again after such a loss: a command's
	// position (the request stays accepted and still takes its reply) and a
	// reply's result (the reply is read again from the reply topic).
	Relaxed bool
}

// IdemEntry is a stored answer to a produce carrying an Idempotency-Key.
type IdemEntry struct {
	Done   bool // false while the first request is still in flight
	Status int
	Body   []byte
}

// ErrNotFound is returned by Store.Get for an unknown request id.
var ErrNotFound = errors.New("gateway: request not found")

// Store keeps request status, produce idempotency keys and the gateway's
// read positions in the reply topic. It is shared by every gateway instance
// that answers for the same requests. SQLStore implements it on SQLite (the
// embedded default) and PostgreSQL (for several instances on several
// machines); storetest-style conformance runs on both (store_test.go).
type Store interface {
	// Create stores r unless a request with its IdempotencyKey exists, in
	// which case it returns that one and false.
	Create(ctx context.Context, r *Request) (*Request, bool, error)
	// Get returns the request or ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// List returns recent requests, newest first (by CreatedAt, then ID),
	// as q selects them.
	List(ctx context.Context, q ListQuery) ([]*Request, error)
	// Transition applies t if the request is in one of t.From and returns
	// the request after it, and whether it applied. A transition to a final
	// state schedules the callback, if the request has one.
	Transition(ctx context.Context, id string, t Transition) (*Request, bool, error)
	// Delete removes a request (a submit whose command was never produced).
	Delete(ctx context.Context, id string) error
	// Expire moves the open requests whose expiry is at or before now to
	// Expired and returns them.
	Expire(ctx context.Context, now time.Time) ([]*Request, error)
	// Purge removes final requests last updated before t whose callback is
	// not pending, and produce idempotency entries created before t.
	Purge(ctx context.Context, t time.Time) (int64, error)

	// ClaimCallbacks leases up to limit requests whose callback is due at
	// now, so no other instance delivers them until the lease ends.
	ClaimCallbacks(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Request, error)
	// SaveCallback records the callback's state, attempts and next attempt
	// time, and ends the lease.
	SaveCallback(ctx context.Context, id, state string, attempts []Attempt, next time.Time) error

	// BeginIdem claims key for a produce. If the key is new it returns
	// (nil, nil): the caller produces, then FinishIdem or AbortIdem. If it
	// exists it returns its entry (Done false while the first is in flight).
	BeginIdem(ctx context.Context, key string, now time.Time) (*IdemEntry, error)
	FinishIdem(ctx context.Context, key string, status int, body []byte) error
	AbortIdem(ctx context.Context, key string) error

	// Positions returns the next offsets to read from topic, by partition,
	// as far as any instance has applied the replies before them.
	Positions(ctx context.Context, topic string) (map[int32]int64, error)
	// SavePositions raises the stored positions (never lowers them).
	SavePositions(ctx context.Context, topic string, next map[int32]int64) error

	Close() error
}
