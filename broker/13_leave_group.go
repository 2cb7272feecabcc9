package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// LeaveGroup: v0-5
//
// Behaviour (package group): removes members and rebalances the rest.
//
// Version notes:
//   - v3: a batch of members, by member ID or group.instance.id, each with
//     its own error (KIP-345).

func (b *Broker) handleLeaveGroup(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.LeaveGroupRequest)
	if !r.allowed(resGroup, req.Group, opRead) {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = groupDenied
		return resp, nil
	}
	return b.groups.LeaveGroup(r.ctx, req), nil
}
