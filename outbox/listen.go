package outbox

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// probeTimeout bounds how long listen waits for its probe notification.
const probeTimeout = 5 * time.Second

// errNoNotifications: LISTEN succeeded but the connection gets no
// notifications.
var errNoNotifications = errors.New("outbox: LISTEN took effect but its connection gets no notifications " +
	"(a probe NOTIFY never arrived): behind a pooler in transaction or statement mode (PgBouncer) the server " +
	"connection that ran LISTEN goes back to the pool; set NoListen (spool outbox relay --no-listen) to poll only")

// listen keeps a LISTEN on the table's channel (PostgreSQL through pgx)
// on one connection of the pool and wakes the relay on each notification.
// The insert trigger notifies when the adding transaction commits. When
// the LISTEN fails, gets no notifications (probeListen: a pooler in
// transaction mode) or its connection drops, the relay keeps polling and
// listen tries again with backoff.
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
		r.Wake() // rows committed before the LISTEN took effect
		if err := r.probeListen(ctx, pc); err != nil {
			return errors.Join(err, driver.ErrBadConn)
		}
		r.listening.Store(true)
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

// probeListen proves that the connection pc, which ran LISTEN, receives
// notifications: it sends one (with a token of this attempt) from another
// connection of the pool and waits for it. Behind a pooler in transaction
// mode the LISTEN ran on a server connection that went back to the pool, so
// the probe reaches another client or none (PgBouncer logs "got packet 'A'
// from server when not linked"), and the relay would believe it listens
// while it only polls at five times PollInterval; the probe fails instead
// with errNoNotifications. Notifications before the probe wake the relay.
func (r *Relay) probeListen(ctx context.Context, pc *pgx.Conn) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	// A token per attempt: PgBouncer may hand an earlier attempt's probe,
	// received by a server connection while no client was linked to it, to
	// the next client that gets that connection.
	token := fmt.Sprintf("probe:%s:%d", r.cfg.ID, time.Now().UnixNano())
	if _, err := r.cfg.DB.ExecContext(pctx, "SELECT pg_notify($1, $2)", r.cfg.Table, token); err != nil {
		return fmt.Errorf("outbox: LISTEN probe: %w", err)
	}
	for {
		n, err := pc.WaitForNotification(pctx)
		if err != nil {
			if ctx.Err() == nil && pctx.Err() != nil {
				return errNoNotifications
			}
			return err
		}
		r.Wake()
		if n.Payload == token {
			return nil
		}
	}
}
