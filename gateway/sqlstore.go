package gateway

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Dialect is the SQL flavour of a SQLStore.
type Dialect int

// The supported dialects.
const (
	SQLite   Dialect = iota // embedded, one file; several instances on one machine may share it
	Postgres                // several instances on several machines
)

// SQLStore is the Store on SQLite or PostgreSQL. Its tables:
//
//	spool_gateway_requests     one row per request (id primary key, idem_key unique)
//	spool_gateway_idempotency  produce answers by Idempotency-Key
//	spool_gateway_positions    (topic, partition) -> next reply offset applied
//
// Every write goes through one writer goroutine that runs whatever writes
// are waiting in one transaction, each in a savepoint of its own (group
// commit: one fsync for many requests, and no writers queueing on
// SQLite's lock). Reads go to the pool directly. Statements are prepared
// once and reused (parsing SQL was a third of the gateway's CPU).
//
// Durability: a write is durable (committed with an fsync: SQLite's
// synchronous=FULL, PostgreSQL's synchronous_commit) or relaxed (committed
// without waiting for the disk: synchronous=NORMAL in WAL mode,
// synchronous_commit=off). Both keep the log's order, so a power loss
// loses at most a suffix of relaxed commits, and a durable commit makes
// every earlier one durable too. Durable: a new request (it must be on disk
// before its command is produced, or an idempotent retry after a power
// loss could produce a second command), its removal, failures and cancels,
// produce idempotency keys, callback state. Relaxed: what the gateway can
// do again after a loss: a command's position (Transition.Relaxed), a
// reply's result (the reply is read again: the read positions are saved
// after it, relaxed too, so they are lost with it), expiry and purges.
type SQLStore struct {
	db  *sql.DB
	d   Dialect
	own bool

	// wconn is the writer's own connection (SQLite: the synchronous level
	// is a connection setting, and cannot change inside a transaction);
	// wsync is its current level, true for FULL. PostgreSQL's writer uses
	// the pool (SET LOCAL synchronous_commit per transaction).
	wconn *sql.Conn
	wsync bool
	// beforeCommit, when set (tests), is called in each of the writer's
	// transactions before its commit, with whether it is durable and how
	// many writes it holds.
	beforeCommit func(tx *sql.Tx, durable bool, n int)

	stmts struct {
		sync.Mutex
		m map[string]*sql.Stmt
	}

	ops       chan *writeOp
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// writeOp is one write waiting for the writer.
type writeOp struct {
	fn      func(ctx context.Context, tx *sql.Tx) error
	durable bool
	err     chan error
}

// prepare returns the prepared statement of query (after q), preparing it
// on first use. database/sql prepares it again on each connection that
// runs it, once, and Tx.StmtContext reuses that.
func (s *SQLStore) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	query = s.q(query)
	s.stmts.Lock()
	defer s.stmts.Unlock()
	if st := s.stmts.m[query]; st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if s.stmts.m == nil {
		s.stmts.m = map[string]*sql.Stmt{}
	}
	s.stmts.m[query] = st
	return st, nil
}

// exec runs query in tx through its prepared statement.
func (s *SQLStore) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

// query runs query in tx (nil: on the pool) through its prepared statement.
func (s *SQLStore) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, err := s.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	if tx != nil {
		st = tx.StmtContext(ctx, st)
	}
	return st.QueryContext(ctx, args...)
}

// row is query for one row: the scan's error is the query's, or
// sql.ErrNoRows.
func (s *SQLStore) row(ctx context.Context, tx *sql.Tx, query string, args ...any) rowScanner {
	rows, err := s.query(ctx, tx, query, args...)
	return rowScanner{rows: rows, err: err}
}

// rowScanner is a *sql.Row that can also carry a prepare error.
type rowScanner struct {
	rows *sql.Rows
	err  error
}

func (r rowScanner) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

// maxBatch bounds the writes of one transaction.
const maxBatch = 256

// write runs fn in the writer's next transaction and returns its error, or
// the commit's: durably (on disk when write returns) or relaxed (see
// SQLStore).
func (s *SQLStore) write(ctx context.Context, durable bool, fn func(ctx context.Context, tx *sql.Tx) error) error {
	op := &writeOp{fn: fn, durable: durable, err: make(chan error, 1)}
	select {
	case s.ops <- op:
	case <-s.stop:
		return errors.New("gateway: store closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the write happens: wait for it whatever ctx says.
	return <-op.err
}

func (s *SQLStore) writer() {
	defer close(s.done)
	batch := make([]*writeOp, 0, maxBatch)
	for {
		var op *writeOp
		select {
		case op = <-s.ops:
		case <-s.stop:
			// Drain what was queued before the stop.
			for {
				select {
				case op := <-s.ops:
					s.commit([]*writeOp{op})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], op)
	more:
		for len(batch) < maxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// begin starts the writer's transaction, durable or relaxed.
func (s *SQLStore) begin(ctx context.Context, durable bool) (*sql.Tx, error) {
	if s.d == Postgres {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil || durable {
			return tx, err
		}
		if _, err := s.exec(ctx, tx, `SET LOCAL synchronous_commit = off`); err != nil {
			tx.Rollback()
			return nil, err
		}
		return tx, nil
	}
	if s.wsync != durable {
		level := "NORMAL"
		if durable {
			level = "FULL"
		}
		if _, err := s.wconn.ExecContext(ctx, "PRAGMA synchronous = "+level); err != nil {
			return nil, err
		}
		s.wsync = durable
	}
	return s.wconn.BeginTx(ctx, nil)
}

// commit runs a batch in one transaction, each op in a savepoint so that
// one op's error undoes only its own statements. The batch is durable if
// one of its writes is.
func (s *SQLStore) commit(batch []*writeOp) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	durable := false
	for _, op := range batch {
		durable = durable || op.durable
	}
	if len(batch) == 1 {
		// Alone: no savepoint needed, the transaction is the op's own.
		tx, err := s.begin(ctx, durable)
		if err == nil {
			if errs[0] = batch[0].fn(ctx, tx); errs[0] != nil {
				tx.Rollback()
			} else if err = s.commitTx(tx, durable, 1); err != nil {
				errs[0] = fmt.Errorf("gateway: store transaction: %w", err)
			}
		} else {
			errs[0] = fmt.Errorf("gateway: store transaction: %w", err)
		}
		batch[0].err <- errs[0]
		return
	}
	tx, err := s.begin(ctx, durable)
	if err == nil {
		for i, op := range batch {
			if _, err = s.exec(ctx, tx, "SAVEPOINT w"); err != nil {
				break
			}
			if errs[i] = op.fn(ctx, tx); errs[i] != nil {
				if _, err = s.exec(ctx, tx, "ROLLBACK TO SAVEPOINT w"); err != nil {
					break
				}
			}
			if _, err = s.exec(ctx, tx, "RELEASE SAVEPOINT w"); err != nil {
				break
			}
		}
		if err == nil {
			err = s.commitTx(tx, durable, len(batch))
		} else {
			tx.Rollback()
		}
	}
	for i, op := range batch {
		if err != nil {
			op.err <- fmt.Errorf("gateway: store transaction: %w", err)
			continue
		}
		op.err <- errs[i]
	}
}

func (s *SQLStore) commitTx(tx *sql.Tx, durable bool, n int) error {
	if s.beforeCommit != nil {
		s.beforeCommit(tx, durable, n)
	}
	return tx.Commit()
}

// OpenStore opens the store named by dsn: "postgres://..." or
// "postgresql://..." for PostgreSQL, otherwise a SQLite file path (created
// with its directory if missing). It creates the tables if needed.
func OpenStore(ctx context.Context, dsn string) (*SQLStore, error) {
	var (
		db  *sql.DB
		d   Dialect
		err error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		d = Postgres
		db, err = sql.Open("pgx", dsn)
	} else {
		path := strings.TrimPrefix(dsn, "sqlite:")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("gateway: store directory: %w", err)
		}
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: open store: %w", err)
	}
	// Keep the connections open: database/sql keeps 2 idle by default, so
	// concurrent polls opened (and set up) a new connection per read.
	db.SetMaxOpenConns(storeConns)
	db.SetMaxIdleConns(storeConns)
	s, err := NewSQLStore(ctx, db, d)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// storeConns is the connection pool size of a store OpenStore opens: the
// writer's plus the readers'.
const storeConns = 16

// NewSQLStore returns a store in db (which the caller keeps owning) and
// creates its tables if needed. On SQLite the store holds one of db's
// connections for its writer until Close, so db must allow at least two
// open connections (reads and statement preparation use the others).
func NewSQLStore(ctx context.Context, db *sql.DB, d Dialect) (*SQLStore, error) {
	if d == SQLite && db.Stats().MaxOpenConnections == 1 {
		return nil, errors.New("gateway: store: a SQLite database limited to one open connection would deadlock (the writer keeps one); allow two or more")
	}
	s := &SQLStore{db: db, d: d, ops: make(chan *writeOp, maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	blob := "BLOB"
	if d == Postgres {
		blob = "BYTEA"
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS spool_gateway_requests (
			id TEXT PRIMARY KEY,
			topic TEXT NOT NULL,
			principal TEXT NOT NULL,
			idem_key TEXT UNIQUE,
			state TEXT NOT NULL,
			content_type TEXT NOT NULL,
			result ` + blob + `,
			error TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			updated_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL,
			cmd_partition INTEGER NOT NULL,
			cmd_offset BIGINT NOT NULL,
			callback_url TEXT NOT NULL,
			callback_state TEXT NOT NULL,
			callback_attempts TEXT NOT NULL,
			callback_next_at BIGINT NOT NULL,
			callback_lease BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS spool_gateway_requests_open ON spool_gateway_requests (state, expires_at)`,
		`CREATE INDEX IF NOT EXISTS spool_gateway_requests_callback ON spool_gateway_requests (callback_state, callback_next_at)`,
		`CREATE INDEX IF NOT EXISTS spool_gateway_requests_created ON spool_gateway_requests (created_at, id)`,
		`CREATE TABLE IF NOT EXISTS spool_gateway_idempotency (
			idem_key TEXT PRIMARY KEY,
			done INTEGER NOT NULL,
			status INTEGER NOT NULL,
			body ` + blob + `,
			created_at BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS spool_gateway_positions (
			topic TEXT NOT NULL,
			part INTEGER NOT NULL,
			next_offset BIGINT NOT NULL,
			PRIMARY KEY (topic, part))`,
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("gateway: create store tables: %w", err)
		}
	}
	if d == SQLite {
		c, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("gateway: store writer connection: %w", err)
		}
		if _, err := c.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
			c.Close()
			return nil, fmt.Errorf("gateway: store writer connection: %w", err)
		}
		s.wconn, s.wsync = c, true
	}
	go s.writer()
	return s, nil
}

// q rewrites ? placeholders to $n for PostgreSQL.
func (s *SQLStore) q(query string) string {
	if s.d != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

const requestCols = `id, topic, principal, idem_key, state, content_type, result, error, created_at, updated_at,
	expires_at, cmd_partition, cmd_offset, callback_url, callback_state, callback_attempts, callback_next_at`

type scanner interface{ Scan(...any) error }

func scanRequest(sc scanner) (*Request, error) {
	var (
		r                             Request
		idem                          sql.NullString
		state, attempts               string
		created, updated, exp, cbNext int64
	)
	err := sc.Scan(&r.ID, &r.Topic, &r.Principal, &idem, &state, &r.ContentType, &r.Result, &r.Error,
		&created, &updated, &exp, &r.Partition, &r.Offset, &r.CallbackURL, &r.CallbackState, &attempts, &cbNext)
	if err != nil {
		return nil, err
	}
	r.IdempotencyKey = idem.String
	r.State = State(state)
	r.CreatedAt, r.UpdatedAt, r.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC(), time.UnixMilli(exp).UTC()
	if cbNext > 0 {
		r.CallbackNextAt = time.UnixMilli(cbNext).UTC()
	}
	if attempts != "" && attempts != "null" {
		if err := json.Unmarshal([]byte(attempts), &r.CallbackAttempts); err != nil {
			return nil, fmt.Errorf("gateway: request %s: callback attempts: %w", r.ID, err)
		}
	}
	return &r, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Create implements Store.
func (s *SQLStore) Create(ctx context.Context, r *Request) (*Request, bool, error) {
	var (
		old     *Request
		created bool
	)
	// Durable: the row must be on disk before the command is produced.
	err := s.write(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `INSERT INTO spool_gateway_requests (`+requestCols+`, callback_lease)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', 0, 0) ON CONFLICT DO NOTHING`,
			r.ID, r.Topic, r.Principal, nullIfEmpty(r.IdempotencyKey), string(r.State), r.ContentType, r.Result, r.Error,
			ms(r.CreatedAt), ms(r.UpdatedAt), ms(r.ExpiresAt), r.Partition, r.Offset, r.CallbackURL, r.CallbackState)
		if err != nil {
			return fmt.Errorf("gateway: store request: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("gateway: store request: %w", err)
		}
		if n == 1 {
			created = true
			return nil
		}
		if r.IdempotencyKey == "" {
			return fmt.Errorf("gateway: store request: id %s exists", r.ID)
		}
		old, err = scanRequest(s.row(ctx, tx, `SELECT `+requestCols+` FROM spool_gateway_requests WHERE idem_key = ?`, r.IdempotencyKey))
		if err != nil {
			return fmt.Errorf("gateway: read request by idempotency key: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if created {
		return r, true, nil
	}
	return old, false, nil
}

// Get implements Store.
func (s *SQLStore) Get(ctx context.Context, id string) (*Request, error) {
	r, err := scanRequest(s.row(ctx, nil, `SELECT `+requestCols+` FROM spool_gateway_requests WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: read request %s: %w", id, err)
	}
	return r, nil
}

// Transition implements Store.
func (s *SQLStore) Transition(ctx context.Context, id string, t Transition) (*Request, bool, error) {
	if len(t.From) == 0 {
		return nil, false, errors.New("gateway: transition without a from state")
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(t.From)), ", ")
	args := []any{string(t.To), t.ContentType, t.Result, t.Error, ms(t.At), t.Partition, t.Offset,
		t.To.Final(), CallbackPending, ms(t.At), id}
	for _, f := range t.From {
		args = append(args, string(f))
	}
	var (
		r       *Request
		applied bool
	)
	err := s.write(ctx, !t.Relaxed, func(ctx context.Context, tx *sql.Tx) error {
		// RETURNING gives the row when the update applied, without a
		// second statement; only a transition that did not apply reads it.
		var err error
		r, err = scanRequest(s.row(ctx, tx, `UPDATE spool_gateway_requests SET state = ?, content_type = ?, result = ?,
			error = ?, updated_at = ?,
			cmd_partition = CASE WHEN ? >= 0 THEN ? ELSE cmd_partition END,
			cmd_offset = CASE WHEN ? >= 0 THEN ? ELSE cmd_offset END,
			callback_state = CASE WHEN callback_url <> '' AND ? THEN ? ELSE callback_state END,
			callback_next_at = CASE WHEN callback_url <> '' THEN ? ELSE callback_next_at END
			WHERE id = ? AND state IN (`+in+`) RETURNING `+requestCols, expandPos(args)...))
		if err == nil {
			applied = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("gateway: update request %s: %w", id, err)
		}
		r, err = scanRequest(s.row(ctx, tx, `SELECT `+requestCols+` FROM spool_gateway_requests WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("gateway: read request %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return r, applied, nil
}

// expandPos duplicates the partition and offset arguments of Transition's
// update (each appears twice in the CASE expressions).
func expandPos(a []any) []any {
	// a: to, ct, result, err, at, part, off, final, pending, at2, id, from...
	out := append([]any{}, a[:5]...)
	out = append(out, a[5], a[5], a[6], a[6])
	return append(out, a[7:]...)
}

// Delete implements Store.
func (s *SQLStore) Delete(ctx context.Context, id string) error {
	return s.write(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM spool_gateway_requests WHERE id = ?`, id); err != nil {
			return fmt.Errorf("gateway: delete request %s: %w", id, err)
		}
		return nil
	})
}

// Expire implements Store.
func (s *SQLStore) Expire(ctx context.Context, now time.Time) ([]*Request, error) {
	var out []*Request
	// Relaxed: an expiry lost to a power loss is found again.
	err := s.write(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := s.query(ctx, tx, `UPDATE spool_gateway_requests SET state = ?, error = ?, updated_at = ?,
			callback_state = CASE WHEN callback_url <> '' THEN ? ELSE callback_state END,
			callback_next_at = CASE WHEN callback_url <> '' THEN ? ELSE callback_next_at END
			WHERE state IN (?, ?) AND expires_at <= ? RETURNING `+requestCols,
			string(Expired), "no reply before the request expired", ms(now), CallbackPending, ms(now),
			string(Accepted), string(Pending), ms(now))
		if err != nil {
			return fmt.Errorf("gateway: expire requests: %w", err)
		}
		out, err = collect(rows)
		return err
	})
	return out, err
}

func collect(rows *sql.Rows) ([]*Request, error) {
	defer rows.Close()
	var out []*Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("gateway: read requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gateway: read requests: %w", err)
	}
	return out, nil
}

// Purge implements Store.
func (s *SQLStore) Purge(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM spool_gateway_requests WHERE state NOT IN (?, ?)
			AND updated_at < ? AND callback_state <> ?`, string(Accepted), string(Pending), ms(t), CallbackPending)
		if err != nil {
			return fmt.Errorf("gateway: purge requests: %w", err)
		}
		n, _ = res.RowsAffected()
		if _, err := s.exec(ctx, tx, `DELETE FROM spool_gateway_idempotency WHERE created_at < ?`, ms(t)); err != nil {
			return fmt.Errorf("gateway: purge idempotency keys: %w", err)
		}
		return nil
	})
	return n, err
}

// ClaimCallbacks implements Store.
func (s *SQLStore) ClaimCallbacks(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Request, error) {
	rows, err := s.query(ctx, nil, `SELECT id FROM spool_gateway_requests
		WHERE callback_state = ? AND callback_next_at <= ? AND callback_lease <= ? ORDER BY callback_next_at LIMIT ?`,
		CallbackPending, ms(now), ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("gateway: due callbacks: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("gateway: due callbacks: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gateway: due callbacks: %w", err)
	}
	var out []*Request
	for _, id := range ids {
		var n int64
		err := s.write(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
			res, err := s.exec(ctx, tx, `UPDATE spool_gateway_requests SET callback_lease = ?
				WHERE id = ? AND callback_state = ? AND callback_lease <= ?`, ms(now.Add(lease)), id, CallbackPending, ms(now))
			if err != nil {
				return fmt.Errorf("gateway: lease callback %s: %w", id, err)
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return out, err
		}
		if n != 1 {
			continue // another instance leased it first
		}
		r, err := s.Get(ctx, id)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// SaveCallback implements Store.
func (s *SQLStore) SaveCallback(ctx context.Context, id, state string, attempts []Attempt, next time.Time) error {
	a, err := json.Marshal(attempts)
	if err != nil {
		return fmt.Errorf("gateway: callback attempts: %w", err)
	}
	return s.write(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE spool_gateway_requests SET callback_state = ?, callback_attempts = ?,
			callback_next_at = ?, callback_lease = 0 WHERE id = ?`, state, string(a), ms(next), id); err != nil {
			return fmt.Errorf("gateway: save callback %s: %w", id, err)
		}
		return nil
	})
}

// BeginIdem implements Store.
func (s *SQLStore) BeginIdem(ctx context.Context, key string, now time.Time) (*IdemEntry, error) {
	var out *IdemEntry
	err := s.write(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `INSERT INTO spool_gateway_idempotency (idem_key, done, status, body, created_at)
			VALUES (?, 0, 0, NULL, ?) ON CONFLICT DO NOTHING`, key, ms(now))
		if err != nil {
			return fmt.Errorf("gateway: idempotency key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var (
			e    IdemEntry
			done int
		)
		if err := s.row(ctx, tx, `SELECT done, status, body FROM spool_gateway_idempotency WHERE idem_key = ?`, key).
			Scan(&done, &e.Status, &e.Body); err != nil {
			return fmt.Errorf("gateway: idempotency key: %w", err)
		}
		e.Done = done == 1
		out = &e
		return nil
	})
	return out, err
}

// FinishIdem implements Store.
func (s *SQLStore) FinishIdem(ctx context.Context, key string, status int, body []byte) error {
	return s.write(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE spool_gateway_idempotency SET done = 1, status = ?, body = ? WHERE idem_key = ?`,
			status, body, key); err != nil {
			return fmt.Errorf("gateway: idempotency key: %w", err)
		}
		return nil
	})
}

// AbortIdem implements Store.
func (s *SQLStore) AbortIdem(ctx context.Context, key string) error {
	return s.write(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM spool_gateway_idempotency WHERE idem_key = ? AND done = 0`, key); err != nil {
			return fmt.Errorf("gateway: idempotency key: %w", err)
		}
		return nil
	})
}

// Positions implements Store.
func (s *SQLStore) Positions(ctx context.Context, topic string) (map[int32]int64, error) {
	rows, err := s.query(ctx, nil, `SELECT part, next_offset FROM spool_gateway_positions WHERE topic = ?`, topic)
	if err != nil {
		return nil, fmt.Errorf("gateway: reply positions: %w", err)
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var (
			p int32
			o int64
		)
		if err := rows.Scan(&p, &o); err != nil {
			return nil, fmt.Errorf("gateway: reply positions: %w", err)
		}
		out[p] = o
	}
	return out, rows.Err()
}

// SavePositions implements Store.
func (s *SQLStore) SavePositions(ctx context.Context, topic string, next map[int32]int64) error {
	greatest := "MAX"
	if s.d == Postgres {
		greatest = "GREATEST"
	}
	// Relaxed, like the replies before them: a loss loses both, and the
	// replies are read again.
	return s.write(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
		for p, o := range next {
			if _, err := s.exec(ctx, tx, `INSERT INTO spool_gateway_positions (topic, part, next_offset) VALUES (?, ?, ?)
				ON CONFLICT (topic, part) DO UPDATE SET next_offset = `+greatest+`(spool_gateway_positions.next_offset, excluded.next_offset)`,
				topic, p, o); err != nil {
				return fmt.Errorf("gateway: save reply positions: %w", err)
			}
		}
		return nil
	})
}

// Close stops the writer (after the writes already queued) and closes the
// database if OpenStore opened it. It is idempotent.
func (s *SQLStore) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.stmts.Lock()
		for _, st := range s.stmts.m {
			st.Close()
		}
		s.stmts.m = nil
		s.stmts.Unlock()
		if s.wconn != nil {
			s.wconn.Close()
		}
		if s.own {
			err = s.db.Close()
		}
	})
	return err
}
