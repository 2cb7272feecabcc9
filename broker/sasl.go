package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/spoolmq/spool/auth"
)

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// startSecurity runs the TLS handshake of SSL and SASL_SSL listeners and
// sets the connection's principal: from the client certificate (mutual
// TLS), else ANONYMOUS; on SASL listeners the connection may do nothing
// but ApiVersions and the SASL exchange until it has authenticated.
func (c *conn) startSecurity() error {
	c.principal = auth.Anonymous
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.b.metrics.authFailed.WithLabelValues("tls").Inc()
			return fmt.Errorf("broker: TLS handshake: %w", err)
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			// Kafka's default principal of a client certificate: its
			// distinguished name.
			c.principal = auth.Principal("User:" + certs[0].Subject.String())
		}
	}
	c.authed = !c.lis.cfg.sasl()
	return nil
}

// checkAuthenticated refuses, on a SASL listener, every request but
// ApiVersions and the SASL exchange before authentication, and every
// request but a re-authentication once the session has expired (KIP-368).
// The error closes the connection, as Kafka does.
func (c *conn) checkAuthenticated(req *request) error {
	if req.key == 17 || req.key == 36 {
		return nil
	}
	if !c.authed {
		if req.key == 18 {
			return nil
		}
		return fmt.Errorf("broker: API key %d before SASL authentication on listener %s (%s); authenticate with SaslHandshake and SaslAuthenticate first",
			req.key, c.lis.cfg.Name, c.lis.cfg.Protocol)
	}
	if !c.reauthAt.IsZero() && time.Now().After(c.reauthAt) {
		return fmt.Errorf("broker: API key %d after the SASL session of %s expired; clients re-authenticate before connections.max.reauth.ms", req.key, c.principal)
	}
	return nil
}
