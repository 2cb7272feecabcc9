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

// RoundRow is a row as a round's stage hook sees it.
type RoundRow struct {
	ID    int64
	Topic string
	Key   []byte
	Err   error // the broker's answer, from StageAck on
}

// Round stages for OnStage.
const (
	StageSend   = "send"   // the round's records are about to be produced
	StageAck    = "ack"    // one record has its outcome
	StageAcked  = "acked"  // every record of the round has its outcome
	StageMarked = "marked" // a round's acknowledged rows are marked published
	// StageFetched: a round's rows are read (or taken from the read
	// ahead), nothing of them sent yet.
	StageFetched = "fetched"
	// StageDropped: a round read too close to the lease deadline is
	// dropped without sending anything (the rows stay pending).
	StageDropped = "dropped"
)

// KeyBucket is the bucket of the rows of key (non-empty).
func KeyBucket(key []byte) int { return int(hash32(key) % NumBuckets) }

// OnStage makes r call f at each stage of its rounds, with the rows
// concerned. Call it before Start; f runs on the relay's goroutines
// (StageAck on the producer's) and must not block for long.
func OnStage(r *Relay, f func(stage string, rows []RoundRow)) {
	names := map[stage]string{stageSend: StageSend, stageAck: StageAck, stageAcked: StageAcked, stageMarked: StageMarked,
		stageFetched: StageFetched, stageDropped: StageDropped}
	r.onStage = func(s stage, ps []*pending) {
		rows := make([]RoundRow, len(ps))
		for i, p := range ps {
			rows[i] = RoundRow{ID: p.id, Topic: p.topic, Key: p.key, Err: p.err}
		}
		f(names[s], rows)
	}
}
