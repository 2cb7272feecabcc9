package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// SyncGroup: v0-5
//
// Behaviour (package group): the leader's request carries the assignment;
// every member waits for its share (or the connection closes).
//
// Version notes:
//   - v0 is kept for segmentio/kafka-go. v3: group.instance.id; v5: protocol
//     type and name, checked against the group's (INCONSISTENT_GROUP_PROTOCOL).

func (b *Broker) handleSyncGroup(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SyncGroupRequest)
	if !r.allowed(resGroup, req.Group, opRead) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = groupDenied
		return resp, nil
	}
	return b.groups.SyncGroup(r.ctx, req), nil
}
