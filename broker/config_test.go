package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// TestConfigGroupSessionTimeouts: the group session timeout bounds default
// to Kafka's (6s, 30m), bad ranges are refused, and the coordinator enforces
// the configured bounds.
func TestConfigGroupSessionTimeouts(t *testing.T) {
	def := broker.Config{DataDir: "x"}.WithDefaults()
	if def.GroupMinSessionTimeout != 6*time.Second || def.GroupMaxSessionTimeout != 30*time.Minute {
		t.Fatalf("defaults [%v, %v], want [6s, 30m]", def.GroupMinSessionTimeout, def.GroupMaxSessionTimeout)
	}
	for _, bad := range []struct{ min, max time.Duration }{
		{-time.Second, 0},
		{time.Microsecond, time.Second},
		{time.Minute, time.Second},
	} {
		cfg := broker.Config{DataDir: "x", GroupMinSessionTimeout: bad.min, GroupMaxSessionTimeout: bad.max}.WithDefaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "broker: config: group session timeouts") {
			t.Errorf("Validate with [%v, %v]: %v, want a group session timeouts error", bad.min, bad.max, err)
		}
	}

	// join sends a JoinGroup v3 (no MEMBER_ID_REQUIRED round trip) with the
	// given session timeout and returns its error code. Start returns only
	// once the coordinator has loaded, so no answer is
	// COORDINATOR_LOAD_IN_PROGRESS, not even the first.
	join := func(srv *spooltest.Server, group string, session time.Duration) int16 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 3
		req.Group, req.ProtocolType = group, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(session.Milliseconds()), 1000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{}
		req.Protocols = append(req.Protocols, p)
		return dialRaw(t, srv.Addr()).roundTrip(req).(*kmsg.JoinGroupResponse).ErrorCode
	}
	// spooltest lowers the minimum to 100ms; the maximum stays 30m.
	srv := spooltest.Start(t)
	for _, tc := range []struct {
		session time.Duration
		want    int16
	}{
		{spooltest.TestMinSessionTimeout - time.Millisecond, kerr.InvalidSessionTimeout.Code},
		{spooltest.TestMinSessionTimeout, 0},
		{30 * time.Minute, 0},
		{30*time.Minute + time.Millisecond, kerr.InvalidSessionTimeout.Code},
	} {
		if got := join(srv, "g-"+tc.session.String(), tc.session); got != tc.want {
			t.Errorf("spooltest broker: JoinGroup with session %v: %s, want %s", tc.session, errName(got), errName(tc.want))
		}
	}
	// Explicit bounds.
	srv = spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout = time.Second, 2*time.Second
	}))
	for _, tc := range []struct {
		session time.Duration
		want    int16
	}{
		{999 * time.Millisecond, kerr.InvalidSessionTimeout.Code},
		{time.Second, 0},
		{2 * time.Second, 0},
		{2001 * time.Millisecond, kerr.InvalidSessionTimeout.Code},
	} {
		if got := join(srv, "g-"+tc.session.String(), tc.session); got != tc.want {
			t.Errorf("[1s, 2s] broker: JoinGroup with session %v: %s, want %s", tc.session, errName(got), errName(tc.want))
		}
	}
}
