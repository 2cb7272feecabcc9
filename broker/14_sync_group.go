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
	return b.groups.SyncGroup(r.ctx, r.kreq.(*kmsg.SyncGroupRequest)), nil
}
