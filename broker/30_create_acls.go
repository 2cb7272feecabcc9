package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// CreateAcls: v1-3
//
// Behaviour:
//   - Each creation is checked (auth.ACL.Validate: a Type:name principal, a
//     host, a Topic/Group/Cluster/TransactionalId resource, LITERAL or
//     PREFIXED, a concrete operation and ALLOW or DENY); a bad one gets
//     INVALID_REQUEST with the reason, the others are created.
//   - The valid ones are written to __state/security/acls.json (atomic,
//     durable) before they are enforced or answered; a write failure is
//     KAFKA_STORAGE_ERROR for each. The first ACL turns the authorizer on.
//   - Needs Alter on the cluster: CLUSTER_AUTHORIZATION_FAILED.
//
// Version notes:
//   - v0 (before pattern types) is not served; v2: flexible

func (b *Broker) handleCreateAcls(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	if !r.allowed(resCluster, clusterName, opAlter) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		return resp, nil
	}
	var valid []auth.ACL
	var at []int
	for i, c := range req.Creations {
		a := auth.ACL{Principal: auth.Principal(c.Principal), Host: c.Host, ResourceType: c.ResourceType, ResourceName: c.ResourceName,
			PatternType: c.ResourcePatternType, Operation: c.Operation, Permission: c.PermissionType}
		if err := a.Validate(); err != nil {
			resp.Results[i].ErrorCode = kerr.InvalidRequest.Code
			msg := err.Error()
			resp.Results[i].ErrorMessage = &msg
			continue
		}
		valid, at = append(valid, a), append(at, i)
	}
	if len(valid) == 0 {
		return resp, nil
	}
	b.sec.mu.Lock()
	err := b.sec.authz.Add(b.sec.saveACLsLocked, valid...)
	b.sec.mu.Unlock()
	if err != nil {
		b.cfg.Logger.Error("broker: CreateAcls: write ACLs", "err", err)
		msg := "the ACLs could not be written: " + err.Error()
		for _, i := range at {
			resp.Results[i].ErrorCode = kerr.KafkaStorageError.Code
			resp.Results[i].ErrorMessage = &msg
		}
		return resp, nil
	}
	b.cfg.Logger.Info("broker: ACLs created", "principal", string(r.principal()), "count", len(valid))
	return resp, nil
}
