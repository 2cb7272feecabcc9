package broker

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// SaslAuthenticate: v0-2
//
// Behaviour:
//   - Carries one message of the exchange SaslHandshake started; the
//     server's answer goes back in SASLAuthBytes. When the exchange ends,
//     the connection acts as the authenticated principal (User:<name>).
//   - A failure (unknown user, wrong password, a mechanism the user has
//     no credential for, a malformed message) is answered with
//     SASL_AUTHENTICATION_FAILED and one message that does not say which,
//     then the connection is closed; the failure is counted in
//     spool_broker_authentication_failures_total{mechanism}.
//   - Without a SaslHandshake first: ILLEGAL_SASL_STATE, and the
//     connection is closed.
//   - Re-authentication (KIP-368): v1+ answers SessionLifetimeMillis =
//     Config.SASLReauth; clients authenticate again on the same connection
//     before it passes, and must do so as the same principal.
//
// Version notes:
//   - v1: SessionLifetimeMillis; v2: flexible

func (b *Broker) handleSaslAuthenticate(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := r.conn
	if c.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a SaslHandshake first"
		resp.ErrorMessage = &msg
		r.closeAfter = true
		return resp, nil
	}
	out, done, err := c.sasl.Step(req.SASLAuthBytes)
	mech := c.sasl.Mechanism()
	if err == nil && done && c.authed && c.sasl.Principal() != c.principal {
		err = fmt.Errorf("re-authentication as %s on a connection of %s", c.sasl.Principal(), c.principal)
	}
	if err != nil {
		b.metrics.authFailed.WithLabelValues(mech).Inc()
		cause := err
		if fe, ok := err.(*auth.FailedError); ok {
			cause = fe.Cause
		}
		b.cfg.Logger.Warn("broker: SASL authentication failed", "remote", c.remote, "listener", c.lis.cfg.Name, "mechanism", mech, "err", cause)
		c.sasl = nil
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		r.closeAfter = true
		return resp, nil
	}
	resp.SASLAuthBytes = out
	if done {
		c.principal, c.authed, c.sasl = c.sasl.Principal(), true, nil
		c.reauthAt = time.Time{}
		if b.cfg.SASLReauth > 0 {
			resp.SessionLifetimeMillis = b.cfg.SASLReauth.Milliseconds()
			c.reauthAt = time.Now().Add(b.cfg.SASLReauth)
		}
		b.cfg.Logger.Debug("broker: SASL authenticated", "remote", c.remote, "principal", string(c.principal), "mechanism", mech)
	}
	return resp, nil
}
