package outbox

import (
	"context"
	"fmt"
	"slices"
)

// Reading the next round while the current one is in flight (PostgreSQL).
//
// The read is on the relay's critical path: a round reads, sends, waits for
// the acknowledgements, and only then can the next one read. The read ahead
// must neither re-read the rows in flight (that would double the read) nor
// skip a row that committed late with a lower id (ids are drawn at insert,
// not at commit, so an "above the highest id" read alone could send a key's
// later row before its earlier one). So it reads only rows above the
// highest id of the round in flight and, in the same statement (one
// snapshot), counts the pending rows at or below that id that are not in
// flight. It is used only if that count is zero: then every pending row at
// or below the highest id was in flight, and, id order being commit order
// per key, every earlier row of a key it returns is in flight (sent before
// it), read before it in the same read, or already published. It is
// dropped after a round with any failure (a failed key must send nothing
// more) and before a lease change (its buckets may no longer be ours).

// readAhead is one read of the next round.
type readAhead struct {
	done chan struct{}
	rows []*pending
	gaps int64 // pending rows at or below the round's highest id, not in flight
	err  error
}

// startReadAhead reads the rows after sent, the rows the round is sending,
// in the background (PostgreSQL only: SQLite's relay shares one
// connection, and its reads are cheap).
func (r *Relay) startReadAhead(ctx context.Context, sent []*pending) {
	if r.d != Postgres || len(sent) == 0 {
		return
	}
	var hi int64
	flying := make([]int64, 0, len(sent))
	for _, p := range sent {
		hi = max(hi, p.id)
		flying = append(flying, p.id)
	}
	r.inflight.mu.Lock()
	for id := range r.inflight.ids {
		flying = append(flying, id)
	}
	r.inflight.mu.Unlock()
	q, args := r.q.aheadAll, []any{hi, flying, r.cfg.BatchSize}
	if len(r.buckets) < NumBuckets {
		q, args = r.q.aheadSome, append(args, r.q.bucketsArg(slices.Clone(r.buckets)))
	}
	ra := &readAhead{done: make(chan struct{})}
	r.ahead = ra
	go func() {
		defer close(ra.done)
		ra.rows, ra.gaps, ra.err = r.readAbove(ctx, q, args)
	}()
}

func (r *Relay) readAbove(ctx context.Context, q string, args []any) ([]*pending, int64, error) {
	rs, err := r.cfg.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("outbox: relay: read ahead: %w", err)
	}
	defer rs.Close()
	var out []*pending
	var gaps int64
	for rs.Next() {
		p := new(pending)
		if err := rs.Scan(&p.id, &p.topic, &p.key, &p.headers, &p.value, &p.created, &gaps); err != nil {
			return nil, 0, fmt.Errorf("outbox: relay: read ahead: %w", err)
		}
		out = append(out, p)
	}
	if err := rs.Err(); err != nil {
		return nil, 0, fmt.Errorf("outbox: relay: read ahead: %w", err)
	}
	return out, gaps, nil
}

// takeReadAhead returns the read ahead's rows if it can be used: it
// succeeded, found rows, and no pending row it could have skipped.
func (r *Relay) takeReadAhead() []*pending {
	ra := r.ahead
	if ra == nil {
		return nil
	}
	r.ahead = nil
	<-ra.done
	if ra.err != nil || ra.gaps != 0 || len(ra.rows) == 0 {
		r.aheadDropped.Add(1)
		return nil
	}
	// Rows of an earlier round still being marked may have higher ids.
	out := ra.rows[:0]
	r.inflight.mu.Lock()
	for _, p := range ra.rows {
		if _, sent := r.inflight.ids[p.id]; !sent {
			out = append(out, p)
		}
	}
	r.inflight.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	r.aheadUsed.Add(1)
	return out
}

// dropReadAhead waits for a read ahead in flight and forgets it.
func (r *Relay) dropReadAhead() {
	if ra := r.ahead; ra != nil {
		r.ahead = nil
		<-ra.done
		r.aheadDropped.Add(1)
	}
}
