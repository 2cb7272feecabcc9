package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Dialect is the SQL flavour of the outbox database.
type Dialect int

// The supported dialects. DetectDialect is the zero value: the dialect is
// taken from the *sql.DB's driver.
const (
	DetectDialect Dialect = iota
	Postgres              // PostgreSQL through github.com/jackc/pgx/v5/stdlib ("pgx")
	SQLite                // SQLite through modernc.org/sqlite ("sqlite")
)

func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case SQLite:
		return "sqlite"
	}
	return "detect"
}

// ParseDialect parses "postgres" (or "postgresql", "pg") and "sqlite".
func ParseDialect(s string) (Dialect, error) {
	switch strings.ToLower(s) {
	case "postgres", "postgresql", "pg", "pgx":
		return Postgres, nil
	case "sqlite", "sqlite3":
		return SQLite, nil
	}
	return 0, fmt.Errorf("outbox: unknown dialect %q (want postgres or sqlite)", s)
}

// dialectOf returns d, or the dialect of db's driver when d is DetectDialect.
func dialectOf(db *sql.DB, d Dialect) (Dialect, error) {
	if d != DetectDialect {
		return d, nil
	}
	t := reflect.TypeOf(db.Driver())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pkg := t.PkgPath()
	switch {
	case strings.Contains(pkg, "sqlite"):
		return SQLite, nil
	case strings.Contains(pkg, "pgx"), strings.Contains(pkg, "lib/pq"):
		return Postgres, nil
	}
	return 0, fmt.Errorf("outbox: cannot tell the SQL dialect of driver %s: set the Dialect", pkg)
}

// NumBuckets is the number of buckets rows are hashed into by key: the unit
// a relay leases. It is part of the schema (version 1): changing it would
// move keys between buckets.
const NumBuckets = 64

// SchemaVersion is the outbox schema version this package writes and reads.
// Version 2 keeps what is pending in <table>_pending; Migrate brings a
// version 1 outbox to it.
const SchemaVersion = 2

// DefaultTable is the outbox table's name unless Table says otherwise.
const DefaultTable = "spool_outbox"

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,40}$`)

// Option adjusts Add, Migrate, Schema, ReadStatus, Requeue and Discard.
type Option func(*options)

type options struct {
	topic   string
	table   string
	dialect Dialect
}

// Topic sets the topic the event is published to (Add requires it).
func Topic(name string) Option { return func(o *options) { o.topic = name } }

// Table sets the outbox table, overriding the default spool_outbox. Its
// companion tables are named after it (<table>_leases, <table>_relays,
// <table>_schema).
func Table(name string) Option { return func(o *options) { o.table = name } }

// WithDialect sets the SQL dialect, overriding the default (detected from
// the *sql.DB's driver).
func WithDialect(d Dialect) Option { return func(o *options) { o.dialect = d } }

func buildOptions(opts []Option) (options, error) {
	o := options{table: DefaultTable}
	for _, f := range opts {
		f(&o)
	}
	if !tableName.MatchString(o.table) {
		return o, fmt.Errorf("outbox: bad table name %q (letters, digits and _, at most 41)", o.table)
	}
	return o, nil
}

// migrations[v-1] takes the schema from version v-1 to v. Each is a list of
// statements with {t} standing for the table name. Released versions are
// never edited: a change is a new version.
var migrations = map[Dialect][][]string{
	Postgres: {{
		`CREATE TABLE {t} (
    id           BIGINT PRIMARY KEY,   -- assigned by {t}_before_insert: commit order per key
    bucket       INTEGER NOT NULL,     -- FNV-1a of the key (or of event_id without one) mod 64
    key_hash     INTEGER,              -- FNV-1a (32 bits) of record_key; NULL without a key
    topic        TEXT NOT NULL,
    record_key   BYTEA,
    headers      BYTEA NOT NULL,       -- record headers (ce_* and the rest), see outbox/doc
    value        BYTEA,
    event_id     TEXT NOT NULL,        -- ce_id
    event_type   TEXT NOT NULL,        -- ce_type
    created_at   BIGINT NOT NULL,      -- Unix milliseconds, at Add
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    rejected_at  BIGINT,               -- set when the broker refused the row for good
    published_at BIGINT                -- set when the broker acknowledged it
)`,
		`CREATE SEQUENCE {t}_id_seq OWNED BY {t}.id`,
		`CREATE INDEX {t}_pending ON {t} (id) WHERE published_at IS NULL`,
		`CREATE INDEX {t}_stopped ON {t} (record_key, topic, id) WHERE rejected_at IS NOT NULL AND published_at IS NULL`,
		`CREATE INDEX {t}_published ON {t} (published_at) WHERE published_at IS NOT NULL`,
		// Rows of one key take their id only once every earlier
		// transaction that wrote that key has ended (the advisory lock is
		// held to commit), so per key, id order is commit order. The
		// notification goes out when the inserting transaction commits.
		`CREATE FUNCTION {t}_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key_hash IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1936683116, NEW.key_hash);
    END IF;
    NEW.id := nextval('{t}_id_seq');
    PERFORM pg_notify('{t}', '');
    RETURN NEW;
END $$`,
		`CREATE TRIGGER {t}_before_insert BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_before_insert()`,
		`CREATE TABLE {t}_leases (
    bucket     INTEGER PRIMARY KEY,
    owner      TEXT,                   -- relay id, NULL when free
    expires_at BIGINT NOT NULL DEFAULT 0  -- Unix milliseconds, database clock
)`,
		`INSERT INTO {t}_leases (bucket) SELECT generate_series(0, 63)`,
		`CREATE TABLE {t}_relays (
    relay_id TEXT PRIMARY KEY,
    seen_at  BIGINT NOT NULL           -- Unix milliseconds, database clock
)`,
	}, {
		// Version 2: what is pending is a narrow row of {t}_pending, and
		// publishing deletes it. Marking a 1 KiB row published in place
		// wrote a new version of the whole row and its index entries;
		// deleting a narrow row only stamps it.
		`DROP INDEX {t}_pending`,
		`DROP INDEX {t}_stopped`,
		`DROP INDEX {t}_published`,
		`CREATE TABLE {t}_pending (
    id     BIGINT PRIMARY KEY,         -- a row of {t} not yet published
    bucket INTEGER NOT NULL            -- its bucket
)`,
		`INSERT INTO {t}_pending (id, bucket) SELECT id, bucket FROM {t} WHERE published_at IS NULL`,
		// Discarded rows kept rejected_at; a rejected row is now always pending.
		`UPDATE {t} SET rejected_at = NULL WHERE published_at IS NOT NULL`,
		`ALTER TABLE {t} DROP COLUMN published_at`,
		`CREATE INDEX {t}_stopped ON {t} (record_key, topic, id) WHERE rejected_at IS NOT NULL`,
		`CREATE INDEX {t}_created ON {t} (created_at)`,
		// As in version 1, plus the pending row, written in the same
		// transaction as the event's row.
		`CREATE OR REPLACE FUNCTION {t}_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key_hash IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1936683116, NEW.key_hash);
    END IF;
    NEW.id := nextval('{t}_id_seq');
    INSERT INTO {t}_pending (id, bucket) VALUES (NEW.id, NEW.bucket);
    PERFORM pg_notify('{t}', '');
    RETURN NEW;
END $$`,
	}},
	SQLite: {{
		// SQLite has one writer at a time, holding the lock to commit: rowid
		// order is commit order.
		`CREATE TABLE {t} (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket       INTEGER NOT NULL,
    key_hash     INTEGER,
    topic        TEXT NOT NULL,
    record_key   BLOB,
    headers      BLOB NOT NULL,
    value        BLOB,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    rejected_at  INTEGER,
    published_at INTEGER
)`,
		`CREATE INDEX {t}_pending ON {t} (id) WHERE published_at IS NULL`,
		`CREATE INDEX {t}_stopped ON {t} (record_key, topic, id) WHERE rejected_at IS NOT NULL AND published_at IS NULL`,
		`CREATE INDEX {t}_published ON {t} (published_at) WHERE published_at IS NOT NULL`,
		`CREATE TABLE {t}_leases (
    bucket     INTEGER PRIMARY KEY,
    owner      TEXT,
    expires_at INTEGER NOT NULL DEFAULT 0
)`,
		`WITH RECURSIVE b(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM b WHERE n < 63)
INSERT INTO {t}_leases (bucket) SELECT n FROM b`,
		`CREATE TABLE {t}_relays (
    relay_id TEXT PRIMARY KEY,
    seen_at  INTEGER NOT NULL
)`,
	}, {
		// Version 2, as on PostgreSQL: pending rows in {t}_pending.
		`DROP INDEX {t}_pending`,
		`DROP INDEX {t}_stopped`,
		`DROP INDEX {t}_published`,
		`CREATE TABLE {t}_pending (
    id     INTEGER PRIMARY KEY,
    bucket INTEGER NOT NULL
)`,
		`INSERT INTO {t}_pending (id, bucket) SELECT id, bucket FROM {t} WHERE published_at IS NULL`,
		`UPDATE {t} SET rejected_at = NULL WHERE published_at IS NOT NULL`,
		`ALTER TABLE {t} DROP COLUMN published_at`,
		`CREATE INDEX {t}_stopped ON {t} (record_key, topic, id) WHERE rejected_at IS NOT NULL`,
		`CREATE INDEX {t}_created ON {t} (created_at)`,
		`CREATE TRIGGER {t}_after_insert AFTER INSERT ON {t} FOR EACH ROW BEGIN
    INSERT INTO {t}_pending (id, bucket) VALUES (NEW.id, NEW.bucket);
END`,
	}},
}

func expand(stmt, table string) string { return strings.ReplaceAll(stmt, "{t}", table) }

// Schema returns the SQL that creates the current schema in an empty
// database, for teams that run their own migrations: every version's
// statements and the version record Migrate and the relay check.
func Schema(d Dialect, opts ...Option) (string, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return "", err
	}
	steps, ok := migrations[d]
	if !ok {
		return "", fmt.Errorf("outbox: schema: no dialect given (want postgres or sqlite)")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- Spool outbox schema version %d (%s). Generated by `spool outbox schema`.\n", SchemaVersion, d)
	fmt.Fprintf(&b, "%s;\n\n", expand(versionTableSQL, o.table))
	for v, step := range steps {
		fmt.Fprintf(&b, "-- version %d\n", v+1)
		for _, s := range step {
			fmt.Fprintf(&b, "%s;\n\n", expand(s, o.table))
		}
		fmt.Fprintf(&b, "INSERT INTO %s_schema (version) VALUES (%d);\n", o.table, v+1)
	}
	return b.String(), nil
}

const versionTableSQL = `CREATE TABLE IF NOT EXISTS {t}_schema (version INTEGER NOT NULL)`

// ErrNoSchema is returned (wrapped) when the outbox tables are missing or at
// another schema version; the message says to run Migrate.
var ErrNoSchema = errors.New("outbox: schema missing or out of date")

// Migrate creates the outbox tables, or brings them to SchemaVersion. It is
// idempotent: at the current version it changes nothing. Each version is
// applied in a transaction of its own together with its version record;
// on PostgreSQL concurrent Migrate calls serialize on an advisory lock.
func Migrate(ctx context.Context, db *sql.DB, opts ...Option) error {
	o, err := buildOptions(opts)
	if err != nil {
		return err
	}
	d, err := dialectOf(db, o.dialect)
	if err != nil {
		return err
	}
	steps := migrations[d]
	for {
		done, err := migrateStep(ctx, db, d, o.table, steps)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next pending version, reporting done when none is.
func migrateStep(ctx context.Context, db *sql.DB, d Dialect, table string, steps [][]string) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("outbox: migrate: %w", err)
	}
	defer tx.Rollback()
	if d == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(1936683116, 0)`); err != nil {
			return false, fmt.Errorf("outbox: migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, expand(versionTableSQL, table)); err != nil {
		return false, fmt.Errorf("outbox: migrate: %w", err)
	}
	var v int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table+"_schema").Scan(&v); err != nil {
		return false, fmt.Errorf("outbox: migrate: read version: %w", err)
	}
	if v > len(steps) {
		return false, fmt.Errorf("outbox: migrate: %s is at schema version %d, newer than this build knows (%d)", table, v, len(steps))
	}
	if v == len(steps) {
		return true, tx.Commit()
	}
	for _, s := range steps[v] {
		if _, err := tx.ExecContext(ctx, expand(s, table)); err != nil {
			return false, fmt.Errorf("outbox: migrate to version %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+"_schema (version) VALUES ($1)", v+1); err != nil {
		return false, fmt.Errorf("outbox: migrate: record version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("outbox: migrate to version %d: %w", v+1, err)
	}
	return false, nil
}

// checkVersion fails with ErrNoSchema unless table is at SchemaVersion.
func checkVersion(ctx context.Context, db *sql.DB, table string) error {
	var v int
	err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table+"_schema").Scan(&v)
	if err != nil {
		if isMissingTable(err) {
			return fmt.Errorf("%w: table %s_schema does not exist: run outbox.Migrate (or `spool outbox migrate`) first", ErrNoSchema, table)
		}
		return fmt.Errorf("outbox: read schema version: %w", err)
	}
	if v != SchemaVersion {
		return fmt.Errorf("%w: %s is at schema version %d, this build needs %d: run outbox.Migrate (or `spool outbox migrate`)",
			ErrNoSchema, table, v, SchemaVersion)
	}
	return nil
}

// sqlState is implemented by pgx's *pgconn.PgError (and lib/pq's error).
type sqlState interface{ SQLState() string }

// isMissingTable reports whether err says a table does not exist:
// SQLSTATE 42P01 on PostgreSQL; SQLite reports it only as a generic error
// (code 1), so there the message is the only signal.
func isMissingTable(err error) bool {
	var st sqlState
	if errors.As(err, &st) {
		return st.SQLState() == "42P01"
	}
	return strings.Contains(err.Error(), "no such table")
}
