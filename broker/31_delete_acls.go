package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// DeleteAcls: v1-3
//
// Behaviour:
//   - Each filter (as DescribeAcls's) deletes the ACLs it matches and
//     returns them; the set left is written durably before it is enforced
//     (a write failure: KAFKA_STORAGE_ERROR, nothing deleted).
//   - Needs Alter on the cluster: CLUSTER_AUTHORIZATION_FAILED.
//
// Version notes:
//   - v0 (before pattern types) is not served; v2: flexible

func (b *Broker) handleDeleteAcls(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	if !r.allowed(resCluster, clusterName, opAlter) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		return resp, nil
	}
	b.sec.mu.Lock()
	defer b.sec.mu.Unlock()
	for i, f := range req.Filters {
		deleted, err := b.sec.authz.Delete(auth.Filter{ResourceType: f.ResourceType, ResourceName: f.ResourceName, PatternType: f.ResourcePatternType,
			Principal: f.Principal, Host: f.Host, Operation: f.Operation, Permission: f.PermissionType}, b.sec.saveACLsLocked)
		if err != nil {
			resp.Results[i].ErrorCode = kerr.KafkaStorageError.Code
			msg := "the ACLs could not be written: " + err.Error()
			resp.Results[i].ErrorMessage = &msg
			continue
		}
		for _, a := range deleted {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = string(a.Principal), a.Host, a.Operation, a.Permission
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
		}
	}
	return resp, nil
}
