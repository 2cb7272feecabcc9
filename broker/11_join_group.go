package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// JoinGroup: v0-9
//
// Behaviour (package group): the request waits until the rebalance
// completes, or the connection closes. Dynamic members of v4+ first get
// MEMBER_ID_REQUIRED with their member ID (KIP-394); static members
// (group.instance.id) replace their previous incarnation (KIP-345).
//
// Version notes:
//   - v0 has no rebalance timeout (the session timeout is used); kept with
//     v1/v2 for segmentio/kafka-go. v5: group.instance.id; v7: protocol type
//     and name in the response; v8: reason; v9: SkipAssignment (KIP-814).

func (b *Broker) handleJoinGroup(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	if !r.allowed(resGroup, req.Group, opRead) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = groupDenied, -1
		return resp, nil
	}
	return b.groups.JoinGroup(r.ctx, r.client(), req), nil
}
