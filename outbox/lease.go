package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// maintainLeases is one lease round: heartbeat, renew the buckets held,
// then move toward a fair share (NumBuckets / live relays, rounded up):
// release the excess or take free and expired buckets. It runs between
// publishing rounds, so a released bucket has nothing in flight.
//
// Expiry is judged by the database's clock. The local deadline (publish
// only while now + PublishTimeout is before it) starts from a time taken
// before the renewal was sent, minus a tenth of the TTL for clock drift,
// so it ends before any other relay can see the lease expire.
func (r *Relay) maintainLeases(ctx context.Context) error {
	ttl := r.cfg.LeaseTTL.Milliseconds()
	t0 := time.Now()
	db := r.cfg.DB
	if _, err := db.ExecContext(ctx, r.q.heartbeat, r.cfg.ID); err != nil {
		return fmt.Errorf("outbox: relay: heartbeat: %w", err)
	}
	held, err := queryBuckets(ctx, db, r.q.renew, r.cfg.ID, ttl)
	if err != nil {
		r.deadline = time.Time{}
		return fmt.Errorf("outbox: relay: renew leases: %w", err)
	}
	var live int
	if err := db.QueryRowContext(ctx, r.q.live, ttl).Scan(&live); err != nil {
		return fmt.Errorf("outbox: relay: count relays: %w", err)
	}
	share := (NumBuckets + max(live, 1) - 1) / max(live, 1)
	switch {
	case len(held) > share:
		slices.Sort(held)
		drop := held[share:]
		if _, err := db.ExecContext(ctx, r.q.release, r.cfg.ID, r.q.bucketsArg(drop)); err != nil {
			return fmt.Errorf("outbox: relay: release leases: %w", err)
		}
		r.log.Debug("outbox relay: released buckets to other relays", "buckets", len(drop))
		held = held[:share]
	case len(held) < share:
		got, err := queryBuckets(ctx, db, r.q.acquire, r.cfg.ID, ttl, share-len(held))
		if err != nil {
			return fmt.Errorf("outbox: relay: acquire leases: %w", err)
		}
		if len(got) > 0 {
			r.log.Debug("outbox relay: took buckets", "buckets", len(got))
		}
		held = append(held, got...)
	}
	// Relays gone for many TTLs are forgotten, so they stop counting.
	if _, err := db.ExecContext(ctx, r.q.forget, 10*ttl); err != nil {
		return fmt.Errorf("outbox: relay: forget old relays: %w", err)
	}
	slices.Sort(held)
	r.buckets = held
	r.deadline = t0.Add(r.cfg.LeaseTTL - r.cfg.LeaseTTL/10)
	r.nextLease = t0.Add(r.cfg.LeaseTTL / 3)
	r.cleanerOn.Store(len(held) > 0 && held[0] == 0)
	r.heldLeases.Store(int64(len(held)))
	r.hooks.Leased(len(held))
	return nil
}

func queryBuckets(ctx context.Context, db *sql.DB, q string, args ...any) ([]int32, error) {
	rs, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []int32
	for rs.Next() {
		var b int32
		if err := rs.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rs.Err()
}

// releaseAll gives up every lease and the relay's registration (Close).
func (r *Relay) releaseAll(ctx context.Context) error {
	if _, err := r.cfg.DB.ExecContext(ctx, r.q.releaseAll, r.cfg.ID); err != nil {
		return err
	}
	_, err := r.cfg.DB.ExecContext(ctx, r.q.dropRelay, r.cfg.ID)
	return err
}
