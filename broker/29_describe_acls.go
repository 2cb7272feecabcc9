package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// DescribeAcls: v1-3
//
// Behaviour:
//   - The ACLs the filter matches (auth.Filter: nil fields and ANY match
//     everything, MATCH the ACLs that apply to the named resource),
//     grouped by resource pattern, in the order they were created.
//   - Needs Describe on the cluster: CLUSTER_AUTHORIZATION_FAILED.
//
// Version notes:
//   - v0 (before pattern types) is not served; v2: flexible

func (b *Broker) handleDescribeAcls(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !r.allowed(resCluster, clusterName, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	f := auth.Filter{ResourceType: req.ResourceType, ResourceName: req.ResourceName, PatternType: req.ResourcePatternType,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType}
	type key struct {
		rt   auth.ResourceType
		name string
		pt   auth.PatternType
	}
	idx := map[key]int{}
	for _, a := range b.sec.authz.Describe(f) {
		k := key{a.ResourceType, a.ResourceName, a.PatternType}
		i, ok := idx[k]
		if !ok {
			i = len(resp.Resources)
			idx[k] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = k.rt, k.name, k.pt
			resp.Resources = append(resp.Resources, res)
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host, e.Operation, e.PermissionType = string(a.Principal), a.Host, a.Operation, a.Permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, e)
	}
	return resp, nil
}
