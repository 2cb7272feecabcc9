package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ListGroups: v0-5
//
// Behaviour (package group): every group with its protocol type, including
// empty groups that only hold committed offsets.
//
// Version notes:
//   - v4: states filter and group state (KIP-518); v5: types filter and
//     group type (always "classic", KIP-848).

func (b *Broker) handleListGroups(r *request) (kmsg.Response, error) {
	resp := b.groups.ListGroups(r.ctx, r.kreq.(*kmsg.ListGroupsRequest))
	if !b.sec.authz.Enabled() || r.allowedQuiet(resCluster, clusterName, opDescribe) {
		return resp, nil
	}
	var kept []kmsg.ListGroupsResponseGroup
	for _, g := range resp.Groups {
		if r.allowedQuiet(resGroup, g.Group, opDescribe) {
			kept = append(kept, g)
		}
	}
	resp.Groups = kept
	return resp, nil
}
