// Package dedupe makes event handlers idempotent: a handler's effects happen
// once per (consumer group, event id) even though the agent delivers at
// least once.
//
// Two ways to use it:
//
//   - Wrap(store, h): checks the store before calling h and records the
//     event after h succeeds. Effects of h that land between its success and
//     the record are repeated if the process crashes in that gap. Memory is
//     a bounded in-memory store with expiry (one process only).
//   - SQL.Handle(h): the check-and-record is an INSERT in the same database
//     transaction as h's own writes (h receives the *sql.Tx), so the writes
//     and the record commit together or not at all: effects exactly once,
//     for effects that are writes to that database.
package dedupe

import (
	"context"
	"fmt"

	"github.com/spoolmq/spool/agent"
)

// Store remembers which events a consumer group has handled.
type Store interface {
	// Seen reports whether (group, id) was recorded.
	Seen(ctx context.Context, group, id string) (bool, error)
	// Record records (group, id). Recording twice is not an error.
	Record(ctx context.Context, group, id string) error
}

// Wrap returns a handler that skips events the store has seen and records
// events after h returns success or a warning. Events without an id (no
// ce_id) are passed through. Store errors become retries.
func Wrap(s Store, h agent.Handler) agent.Handler {
	return func(ctx context.Context, m *agent.Message) error {
		if m.ID == "" {
			return h(ctx, m)
		}
		seen, err := s.Seen(ctx, m.Group, m.ID)
		if err != nil {
			return agent.Retry(fmt.Errorf("dedupe: check %s: %w", m.ID, err))
		}
		if seen {
			return nil
		}
		herr := h(ctx, m)
		if v, _ := agent.VerdictOf(herr); v != agent.VerdictSuccess && v != agent.VerdictWarn {
			return herr
		}
		if err := s.Record(ctx, m.Group, m.ID); err != nil {
			return agent.Retry(fmt.Errorf("dedupe: record %s: %w", m.ID, err))
		}
		return herr
	}
}
