package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// TopicBacklog is the unpublished rows of one topic.
type TopicBacklog struct {
	Topic    string
	Pending  int64     // rows not yet published, rejected ones included
	Rejected int64     // rows refused for good (their keys are stopped)
	Oldest   time.Time // Add time of the oldest unpublished row
}

// StuckRow is a row that holds back its key: rejected for good, or
// failing and retried.
type StuckRow struct {
	ID        int64
	Topic     string
	Key       []byte
	EventID   string
	EventType string
	Created   time.Time
	Attempts  int
	LastError string
	Rejected  bool  // refused for good; Requeue or Discard it
	Behind    int64 // later rows of its topic and key waiting behind it
}

// Status is what `spool outbox status` shows.
type Status struct {
	Version int            // schema version
	Topics  []TopicBacklog // by topic
	Stuck   []StuckRow     // oldest first, at most 100
	Relays  []RelayLease   // live relays and the buckets each holds
}

// RelayLease is one relay and its leases.
type RelayLease struct {
	ID      string
	Buckets int
	Seen    time.Time
}

// ReadStatus reports the outbox's backlog, its stuck keys and its relays.
func ReadStatus(ctx context.Context, db *sql.DB, opts ...Option) (*Status, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(ctx, db, o.table); err != nil {
		return nil, err
	}
	d, err := dialectOf(db, o.dialect)
	if err != nil {
		return nil, err
	}
	q := newQueries(d, o.table)
	st := &Status{Version: SchemaVersion}
	if st.Topics, err = readBacklog(ctx, db, q); err != nil {
		return nil, err
	}
	t := o.table
	rs, err := db.QueryContext(ctx, `SELECT o.id, o.topic, o.record_key, o.event_id, o.event_type, o.created_at, o.attempts,
       COALESCE(o.last_error, ''), o.rejected_at IS NOT NULL,
       (SELECT COUNT(*) FROM `+joinPending(d, t, "bq", "b")+`
        WHERE b.record_key = o.record_key AND b.topic = o.topic AND b.id > o.id)
FROM `+joinPending(d, t, "q", "o")+` WHERE o.rejected_at IS NOT NULL OR o.attempts > 0
ORDER BY o.id LIMIT 100`)
	if err != nil {
		return nil, fmt.Errorf("outbox: status: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var s StuckRow
		var created int64
		if err := rs.Scan(&s.ID, &s.Topic, &s.Key, &s.EventID, &s.EventType, &created, &s.Attempts,
			&s.LastError, &s.Rejected, &s.Behind); err != nil {
			return nil, fmt.Errorf("outbox: status: %w", err)
		}
		s.Created = time.UnixMilli(created)
		st.Stuck = append(st.Stuck, s)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: status: %w", err)
	}
	rl, err := db.QueryContext(ctx, `SELECT r.relay_id, r.seen_at,
       (SELECT COUNT(*) FROM `+t+`_leases l WHERE l.owner = r.relay_id)
FROM `+t+`_relays r ORDER BY r.relay_id`)
	if err != nil {
		return nil, fmt.Errorf("outbox: status: relays: %w", err)
	}
	defer rl.Close()
	for rl.Next() {
		var l RelayLease
		var seen int64
		if err := rl.Scan(&l.ID, &seen, &l.Buckets); err != nil {
			return nil, fmt.Errorf("outbox: status: relays: %w", err)
		}
		l.Seen = time.UnixMilli(seen)
		st.Relays = append(st.Relays, l)
	}
	return st, rl.Err()
}

func readBacklog(ctx context.Context, db *sql.DB, q queries) ([]TopicBacklog, error) {
	rs, err := db.QueryContext(ctx, q.backlog)
	if err != nil {
		return nil, fmt.Errorf("outbox: backlog: %w", err)
	}
	defer rs.Close()
	var out []TopicBacklog
	for rs.Next() {
		var b TopicBacklog
		var oldest int64
		if err := rs.Scan(&b.Topic, &b.Pending, &b.Rejected, &oldest); err != nil {
			return nil, fmt.Errorf("outbox: backlog: %w", err)
		}
		b.Oldest = time.UnixMilli(oldest)
		out = append(out, b)
	}
	return out, rs.Err()
}

// Requeue clears the rejection of the given rows (every rejected row when
// ids is empty), so the relays publish them, in order, ahead of the rest
// of their keys: for after the cause is fixed (the topic created, its
// max.message.bytes raised). It returns how many rows it requeued.
func Requeue(ctx context.Context, db *sql.DB, ids []int64, opts ...Option) (int64, error) {
	return resolve(ctx, db, ids, false, opts)
}

// Discard gives up on the given rejected rows (every rejected row when ids
// is empty): they are marked published without being sent, so their keys
// move on, and deleted with the other published rows after Retention.
// Their last_error keeps the reason. It returns how many rows it discarded.
func Discard(ctx context.Context, db *sql.DB, ids []int64, opts ...Option) (int64, error) {
	return resolve(ctx, db, ids, true, opts)
}

// resolve requeues or (discard) discards rejected rows, in one
// transaction: a discarded row stops being pending.
func resolve(ctx context.Context, db *sql.DB, ids []int64, discard bool, opts []Option) (int64, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return 0, err
	}
	if err := checkVersion(ctx, db, o.table); err != nil {
		return 0, err
	}
	d, err := dialectOf(db, o.dialect)
	if err != nil {
		return 0, err
	}
	q := newQueries(d, o.table)
	// A rejected row is always pending.
	where := " WHERE rejected_at IS NOT NULL"
	var args []any
	if len(ids) > 0 {
		in := " AND id IN (SELECT value FROM json_each($1))"
		if d == Postgres {
			in = " AND id = ANY($1)"
		}
		where += in
		args = append(args, q.ids(ids))
	}
	set := "rejected_at = NULL, attempts = 0"
	if discard {
		set = "rejected_at = NULL, last_error = 'discarded: ' || COALESCE(last_error, '')"
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	defer tx.Rollback()
	if discard {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+o.table+"_pending WHERE id IN (SELECT id FROM "+o.table+where+")", args...); err != nil {
			return 0, fmt.Errorf("outbox: %w", err)
		}
	}
	res, err := tx.ExecContext(ctx, "UPDATE "+o.table+" SET "+set+where, args...)
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	return n, nil
}
