package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-4
//
// Behaviour:
//   - Spool is a single node: it is the coordinator of every group. Key type
//     0 (group) is answered with node 0 at the advertised address; key type
//     1 (transaction) gets UNSUPPORTED_VERSION ("transactions are not
//     supported"): a retriable COORDINATOR_NOT_AVAILABLE would have the
//     client retry forever. An empty group ID gets INVALID_REQUEST, as Kafka answers.
//
// Version notes:
//   - v1: KeyType; v4: a batch of keys (CoordinatorKeys, KIP-699).
func (b *Broker) handleFindCoordinator(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (node int32, host string, port int32, code int16) {
		switch {
		case req.CoordinatorType != 0:
			return -1, "", -1, kerr.UnsupportedVersion.Code
		case key == "":
			return -1, "", -1, kerr.InvalidRequest.Code
		case !r.allowed(resGroup, key, opDescribe):
			return -1, "", -1, kerr.GroupAuthorizationFailed.Code
		}
		b.ensureOffsetsTopic() // as Kafka creates it for the first group
		return nodeID, r.conn.lis.advHost, r.conn.lis.advPort, 0
	}
	if req.Version < 4 {
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = answer(req.CoordinatorKey)
		if resp.ErrorCode == kerr.UnsupportedVersion.Code {
			resp.ErrorMessage = kmsg.StringPtr(errTransactions)
		}
		return resp, nil
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Host, c.Port, c.ErrorCode = answer(key)
		if c.ErrorCode == kerr.UnsupportedVersion.Code {
			c.ErrorMessage = kmsg.StringPtr(errTransactions)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp, nil
}
