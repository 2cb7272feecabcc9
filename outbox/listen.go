package outbox

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// listen keeps a LISTEN on the table's channel (PostgreSQL through pgx)
// on one connection of the pool and wakes the relay on each notification.
// The insert trigger notifies when the adding transaction commits. When
// the LISTEN fails (a pooler in transaction mode, a dropped connection),
// the relay keeps polling and listen tries again with backoff.
func (r *Relay) listen(ctx context.Context) {
	backoff := r.cfg.RetryBackoff
	for ctx.Err() == nil {
		err := r.listenOnce(ctx)
		r.listening.Store(false)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("outbox relay: LISTEN failed; polling every PollInterval until it works again", "err", err, "retry_in", backoff)
		r.Wake() // notifications may have been missed
		r.sleep(ctx, backoff, false)
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (r *Relay) listenOnce(ctx context.Context) error {
	conn, err := r.cfg.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("outbox: LISTEN needs the pgx driver, not %T", dc)
		}
		pc := c.Conn()
		if _, err := pc.Exec(ctx, `LISTEN "`+r.cfg.Table+`"`); err != nil {
			return errors.Join(err, driver.ErrBadConn)
		}
		r.listening.Store(true)
		r.Wake() // rows committed before the LISTEN took effect
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				// The connection is discarded, never returned to the pool
				// still listening.
				return errors.Join(err, driver.ErrBadConn)
			}
			r.Wake()
		}
	})
}
