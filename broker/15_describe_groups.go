package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-5
//
// Behaviour (package group): state, protocol type and (when Stable)
// protocol, members with client ID, host, metadata and assignment. An
// unknown group is reported as Dead with no error.
//
// Version notes:
//   - v3: authorized operations when asked, computed from the ACLs for
//     the principal (authorized_ops.go); v4: group.instance.id.
//     v6 (GROUP_ID_NOT_FOUND for unknown groups) is not served.
func (b *Broker) handleDescribeGroups(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := b.groups.DescribeGroups(r.ctx, req)
	for i := range resp.Groups {
		if g := &resp.Groups[i]; !r.allowed(resGroup, g.Group, opDescribe) {
			*g = kmsg.DescribeGroupsResponseGroup{Group: g.Group, ErrorCode: kerr.GroupAuthorizationFailed.Code, AuthorizedOperations: unknownAuthorizedOps}
			continue
		}
		if resp.Groups[i].ErrorCode == 0 {
			resp.Groups[i].AuthorizedOperations = r.authorizedOps(req.IncludeAuthorizedOperations, resGroup, resp.Groups[i].Group)
		}
	}
	return resp, nil
}
