package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DeleteGroups: v0-2
//
// Behaviour (package group): deletes empty groups with their committed
// offsets, durably; NON_EMPTY_GROUP while a group has members,
// GROUP_ID_NOT_FOUND for an unknown one.

func (b *Broker) handleDeleteGroups(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	var allowed, denied []string
	for _, g := range req.Groups {
		if r.allowed(resGroup, g, opDelete) {
			allowed = append(allowed, g)
		} else {
			denied = append(denied, g)
		}
	}
	req.Groups = allowed
	resp := b.groups.DeleteGroups(r.ctx, req)
	for _, g := range denied {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, groupDenied
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
