package dedupe

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/spoolmq/spool/agent"
)

// Dialect is the SQL flavour of a SQL store.
type Dialect int

// The supported dialects.
const (
	Postgres Dialect = iota // PostgreSQL, e.g. through github.com/jackc/pgx/v5/stdlib
	SQLite                  // SQLite, e.g. through modernc.org/sqlite
)

// SQL is a Store in a database/sql database. Its table (default
// spool_dedupe) is:
//
//	CREATE TABLE spool_dedupe (
//	    consumer_group TEXT NOT NULL,
//	    event_id       TEXT NOT NULL,
//	    recorded_at    BIGINT NOT NULL,  -- Unix milliseconds
//	    PRIMARY KEY (consumer_group, event_id))
//
// With SQLite, concurrent transactions contend for the database lock: give
// the *sql.DB one connection (db.SetMaxOpenConns(1)) or a busy timeout.
type SQL struct {
	db      *sql.DB
	dialect Dialect
	table   string
	insert  string
	exists  string
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewSQL returns a SQL store in table (empty: spool_dedupe). Call Init to
// create the table.
func NewSQL(db *sql.DB, d Dialect, table string) (*SQL, error) {
	if table == "" {
		table = "spool_dedupe"
	}
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("dedupe: bad table name %q", table)
	}
	ph := func(n int) string {
		if d == Postgres {
			return fmt.Sprintf("$%d", n)
		}
		return "?"
	}
	return &SQL{
		db: db, dialect: d, table: table,
		insert: fmt.Sprintf("INSERT INTO %s (consumer_group, event_id, recorded_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
			table, ph(1), ph(2), ph(3)),
		exists: fmt.Sprintf("SELECT 1 FROM %s WHERE consumer_group = %s AND event_id = %s", table, ph(1), ph(2)),
	}, nil
}

// Init creates the table if it does not exist.
func (s *SQL) Init(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
		consumer_group TEXT NOT NULL,
		event_id TEXT NOT NULL,
		recorded_at BIGINT NOT NULL,
		PRIMARY KEY (consumer_group, event_id))`, s.table))
	if err != nil {
		return fmt.Errorf("dedupe: create table %s: %w", s.table, err)
	}
	return nil
}

// Seen implements Store.
func (s *SQL) Seen(ctx context.Context, group, id string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.exists, group, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dedupe: seen: %w", err)
	}
	return true, nil
}

// Record implements Store.
func (s *SQL) Record(ctx context.Context, group, id string) error {
	if _, err := s.Claim(ctx, s.db, group, id); err != nil {
		return err
	}
	return nil
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Claim records (group, id) through db or tx and reports whether it was new
// (false: a duplicate).
func (s *SQL) Claim(ctx context.Context, x execer, group, id string) (bool, error) {
	res, err := x.ExecContext(ctx, s.insert, group, id, time.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("dedupe: record %s/%s: %w", group, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("dedupe: record %s/%s: %w", group, id, err)
	}
	return n == 1, nil
}

// Purge forgets events recorded before t and returns how many.
func (s *SQL) Purge(ctx context.Context, before time.Time) (int64, error) {
	var q string
	if s.dialect == Postgres {
		q = fmt.Sprintf("DELETE FROM %s WHERE recorded_at < $1", s.table)
	} else {
		q = fmt.Sprintf("DELETE FROM %s WHERE recorded_at < ?", s.table)
	}
	res, err := s.db.ExecContext(ctx, q, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("dedupe: purge: %w", err)
	}
	return res.RowsAffected()
}

// TxHandler is a handler that writes through the transaction in which its
// event is recorded.
type TxHandler func(ctx context.Context, tx *sql.Tx, m *agent.Message) error

// Handle returns a handler that, per event: begins a transaction, records
// (group, id) in it (a duplicate commits nothing and returns nil), calls h
// with the transaction, and commits if h returned success or a warning, or
// rolls back otherwise (so a retried event starts from a clean slate). h
// must not commit or roll back tx. Events without an id are refused with a
// DeadLetter verdict: they cannot be deduplicated.
func (s *SQL) Handle(h TxHandler) agent.Handler {
	return func(ctx context.Context, m *agent.Message) (err error) {
		if m.ID == "" {
			return agent.DeadLetter(errors.New("dedupe: event has no id (ce_id)"))
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return agent.Retry(fmt.Errorf("dedupe: begin: %w", err))
		}
		committed := false
		defer func() {
			if !committed {
				tx.Rollback()
			}
		}()
		fresh, err := s.Claim(ctx, tx, m.Group, m.ID)
		if err != nil {
			return agent.Retry(err)
		}
		if !fresh {
			return nil
		}
		herr := h(ctx, tx, m)
		if v, _ := agent.VerdictOf(herr); v != agent.VerdictSuccess && v != agent.VerdictWarn {
			return herr
		}
		if err := tx.Commit(); err != nil {
			return agent.Retry(fmt.Errorf("dedupe: commit %s: %w", m.ID, err))
		}
		committed = true
		return herr
	}
}
