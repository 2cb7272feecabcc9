package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// Heartbeat: v0-4
//
// Behaviour (package group): keeps a member's session alive;
// REBALANCE_IN_PROGRESS tells it to rejoin, ILLEGAL_GENERATION and
// UNKNOWN_MEMBER_ID that it was fenced or expired.
//
// Version notes:
//   - v3: group.instance.id (FENCED_INSTANCE_ID).

func (b *Broker) handleHeartbeat(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.HeartbeatRequest)
	if !r.allowed(resGroup, req.Group, opRead) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = groupDenied
		return resp, nil
	}
	return b.groups.Heartbeat(r.ctx, req), nil
}
