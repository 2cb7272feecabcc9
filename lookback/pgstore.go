package lookback

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

var postgresDDL = []string{
	`CREATE TABLE IF NOT EXISTS lookback_blocks (id BIGSERIAL PRIMARY KEY, data BYTEA NOT NULL, n BIGINT NOT NULL,
		raw BIGINT NOT NULL, stored BIGINT NOT NULL, min_ts BIGINT NOT NULL, max_ts BIGINT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS lookback_events (seq BIGINT PRIMARY KEY, topic TEXT NOT NULL, part INTEGER NOT NULL,
		off BIGINT NOT NULL, ts BIGINT NOT NULL, key BYTEA, ce_id TEXT, ce_type TEXT, ce_source TEXT,
		ce_subject TEXT, correlation_id TEXT, causation_id TEXT, boff INTEGER NOT NULL, blen INTEGER NOT NULL,
		size INTEGER NOT NULL)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS lookback_events_tpo ON lookback_events (topic, part, off)`,
	`CREATE INDEX IF NOT EXISTS lookback_events_ts ON lookback_events (ts, seq)`,
	`CREATE INDEX IF NOT EXISTS lookback_events_topic ON lookback_events (topic, ts, seq)`,
	`CREATE INDEX IF NOT EXISTS lookback_events_key ON lookback_events (key, ts, seq) WHERE key IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS lookback_events_id ON lookback_events (ce_id) WHERE ce_id IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS lookback_events_type ON lookback_events (ce_type, ts, seq) WHERE ce_type IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS lookback_events_source ON lookback_events (ce_source, ts, seq) WHERE ce_source IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS lookback_events_subject ON lookback_events (ce_subject, ts, seq) WHERE ce_subject IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS lookback_events_corr ON lookback_events (correlation_id, ts, seq) WHERE correlation_id IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS lookback_events_caus ON lookback_events (causation_id) WHERE causation_id IS NOT NULL`,
	`CREATE TABLE IF NOT EXISTS lookback_receipts (grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL,
		off BIGINT NOT NULL, event_id TEXT, outcome TEXT NOT NULL, attempts INTEGER NOT NULL,
		duration_ms DOUBLE PRECISION NOT NULL, ts BIGINT NOT NULL, PRIMARY KEY (grp, topic, part, off))`,
	`CREATE INDEX IF NOT EXISTS lookback_receipts_event ON lookback_receipts (event_id) WHERE event_id IS NOT NULL`,
	`CREATE TABLE IF NOT EXISTS lookback_replays (id TEXT PRIMARY KEY, created BIGINT NOT NULL, state TEXT NOT NULL)`,
}

// OpenPostgres opens the PostgreSQL store at dsn (a postgres:// URL or
// key=value string), creating its tables (lookback_*) if needed. Several
// lookback instances can share one database: the archiver's consumer
// group splits the partitions between them and every write is idempotent.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("lookback: postgres: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("lookback: postgres: %w", err)
	}
	s := &sqlStore{w: db, r: db, d: dialect{name: "postgres", ddl: postgresDDL, dollar: true, maxBatch: 1000, prefix: "lookback_"}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
