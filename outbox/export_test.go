package outbox

import (
	"context"
	"database/sql"
)

// MigrateToVersion applies the schema versions up to v only, for tests of
// the upgrade path.
func MigrateToVersion(ctx context.Context, db *sql.DB, v int, opts ...Option) error {
	o, err := buildOptions(opts)
	if err != nil {
		return err
	}
	d, err := dialectOf(db, o.dialect)
	if err != nil {
		return err
	}
	for {
		done, err := migrateStep(ctx, db, d, o.table, migrations[d][:v])
		if err != nil || done {
			return err
		}
	}
}

// ReadAheads reports how many reads ahead the relay used and dropped.
func (r *Relay) ReadAheads() (used, dropped int64) { return r.aheadUsed.Load(), r.aheadDropped.Load() }
