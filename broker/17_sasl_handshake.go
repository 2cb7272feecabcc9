package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// SaslHandshake: v1 only
//
// Behaviour:
//   - On a SASL_PLAINTEXT or SASL_SSL listener: picks the mechanism of the
//     exchange that SaslAuthenticate requests carry. SCRAM-SHA-512,
//     SCRAM-SHA-256 and PLAIN are served; another gets
//     UNSUPPORTED_SASL_MECHANISM with the list. Sent again on an
//     authenticated connection, it starts a re-authentication (KIP-368).
//   - On other listeners: ILLEGAL_SASL_STATE (they take no SASL).
//
// Version notes:
//   - v0 (raw SASL frames after the handshake, not wrapped in
//     SaslAuthenticate) is not served: every client of the last years
//     uses v1, and v0 frames cannot be told from requests.

func (b *Broker) handleSaslHandshake(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = auth.Mechanisms
	c := r.conn
	switch {
	case !c.lis.cfg.sasl():
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.SupportedMechanisms = nil
	case !auth.IsMechanism(req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		r.closeAfter = true
	default:
		s, err := b.sec.users.NewSession(req.Mechanism)
		if err != nil {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
			r.closeAfter = true
			break
		}
		c.sasl = s
	}
	return resp, nil
}
