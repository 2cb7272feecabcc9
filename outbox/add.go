package outbox

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"

	"github.com/spoolmq/spool/event"
)

// ErrNoTopic is returned by Add when no Topic option is given.
var ErrNoTopic = errors.New("outbox: no topic: pass outbox.Topic(name)")

// Add writes ev into the outbox inside the caller's transaction tx, to be
// published to the topic named by the Topic option: with tx's commit the
// event is committed with the business rows, and a rolled-back tx leaves
// nothing. Like producer.Publish, Add takes causation and correlation from
// an event being handled in ctx (event.NewContext) and the W3C trace
// context from ctx.
//
// An invalid event (no id, type or source) or a missing topic is refused
// before anything is written: tx is left as it was and can still commit.
// A missing outbox table fails with ErrNoSchema (run Migrate); on
// PostgreSQL that error aborts tx, as any failed statement does.
//
// On PostgreSQL, an event with a key takes a transaction-scoped advisory
// lock on the key's hash (inside the table's insert trigger), so
// transactions writing one key commit their events one after the other.
func Add(ctx context.Context, tx *sql.Tx, ev event.Event, opts ...Option) error {
	o, err := buildOptions(opts)
	if err != nil {
		return err
	}
	if o.topic == "" {
		return ErrNoTopic
	}
	prepare(ctx, &ev)
	r, err := ev.Record(o.topic)
	if err != nil {
		return fmt.Errorf("outbox: add %s to %s: %w", ev.Type, o.topic, err)
	}
	var keyHash sql.NullInt32
	var bucket uint32
	if ev.Key != nil {
		h := hash32(ev.Key)
		keyHash = sql.NullInt32{Int32: int32(h), Valid: true}
		bucket = h % NumBuckets
	} else {
		bucket = hash32([]byte(ev.ID)) % NumBuckets
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO "+o.table+
		" (bucket, key_hash, topic, record_key, headers, value, event_id, event_type, created_at)"+
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		int32(bucket), keyHash, o.topic, ev.Key, encodeHeaders(r.Headers), ev.Data, ev.ID, ev.Type,
		time.Now().UnixMilli())
	if err != nil {
		if isMissingTable(err) {
			return fmt.Errorf("%w: table %s does not exist: run outbox.Migrate (or `spool outbox migrate`) first: %v",
				ErrNoSchema, o.table, err)
		}
		return fmt.Errorf("outbox: add %s %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

// prepare does what producer.Producer.Prepare does, without a producer:
// causation and correlation from the handled event, trace context from ctx.
func prepare(ctx context.Context, ev *event.Event) {
	if parent, ok := event.FromContext(ctx); ok {
		ev.Follow(parent)
	}
	if ev.TraceParent == "" {
		c := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, c)
		ev.TraceParent = c[event.HeaderTraceParent]
		if ev.TraceState == "" {
			ev.TraceState = c[event.HeaderTraceState]
		}
	}
}

func hash32(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

// Headers are stored in one column:
//
//	version  byte     1
//	count    uvarint
//	count × (key length uvarint, key, value length uvarint, value)
//
// The format is part of the schema.
const headersV1 = 1

func encodeHeaders(hs []kgo.RecordHeader) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, h := range hs {
		n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, headersV1)
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

var errBadHeaders = errors.New("outbox: malformed headers column")

func decodeHeaders(b []byte) ([]kgo.RecordHeader, error) {
	if len(b) == 0 || b[0] != headersV1 {
		return nil, errBadHeaders
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errBadHeaders
	}
	b = b[k:]
	hs := make([]kgo.RecordHeader, n)
	next := func() ([]byte, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(l)]
		b = b[k+int(l):]
		return v, true
	}
	for i := range hs {
		key, ok := next()
		if !ok {
			return nil, errBadHeaders
		}
		val, ok := next()
		if !ok {
			return nil, errBadHeaders
		}
		hs[i] = kgo.RecordHeader{Key: string(key), Value: val}
	}
	if len(b) != 0 {
		return nil, errBadHeaders
	}
	return hs, nil
}
