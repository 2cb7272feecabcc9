package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-1
//
// Behaviour:
//   - The cluster ID, node 0 as the controller, and node 0 at the
//     advertised address as the only broker.
//   - v1: EndpointType 1 (brokers) is answered as above; 2 (controllers)
//     gets the same single node, which is also the controller.
//
// Version notes:
//   - v1: EndpointType (KIP-919); v2 (IncludeFencedBrokers) not served
//   - cluster authorized operations when asked, computed from the ACLs
//     for the principal (authorized_ops.go)

func (b *Broker) handleDescribeCluster(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if !r.allowed(resCluster, clusterName, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	resp.ClusterID = b.clusterID
	resp.ControllerID = nodeID
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = r.authorizedOps(req.IncludeClusterAuthorizedOperations, resCluster, clusterName)
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = nodeID, r.conn.lis.advHost, r.conn.lis.advPort
	resp.Brokers = append(resp.Brokers, br)
	return resp, nil
}
