package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// SaslHandshake: v0-1 (v0 refused, see below)
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
//   - v0 is advertised, because librdkafka's SASL feature check needs the
//     range to start at 0, but a v0 handshake (raw SASL frames after it,
//     not wrapped in SaslAuthenticate) is answered ILLEGAL_SASL_STATE and
//     the connection closed: v0 frames cannot be told from requests, and
//     every client of the last years (librdkafka, Java, franz-go, sarama)
//     uses v1 when the broker offers it.

func (b *Broker) handleSaslHandshake(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = auth.Mechanisms
	c := r.conn
	switch {
	case req.Version == 0:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		r.closeAfter = true
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
