package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DeleteGroups: v0-2
//
// Behaviour (package group): deletes empty groups with their committed
// offsets, durably; NON_EMPTY_GROUP while a group has members,
// GROUP_ID_NOT_FOUND for an unknown one.
func (b *Broker) handleDeleteGroups(r *request) (kmsg.Response, error) {
	return b.groups.DeleteGroups(r.ctx, r.kreq.(*kmsg.DeleteGroupsRequest)), nil
}
