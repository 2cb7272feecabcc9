package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions: v0-3
//
// Behaviour:
//   - Grows a topic to Count partitions (new ones start empty), durably
//     before the response. Count not above the current count, or above
//     10000: INVALID_PARTITIONS. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//   - An Assignment may only name node 0, one replica per new partition;
//     else INVALID_REPLICA_ASSIGNMENT.
//   - A topic listed twice: INVALID_REQUEST for it.
//   - ValidateOnly: every check, nothing created.
//
// Version notes:
//   - v1: ThrottleMillis semantics; v2: flexible

func (b *Broker) handleCreatePartitions(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		switch {
		case seen[rt.Topic] > 1:
			err = withMessage(kerr.InvalidRequest, "topic listed more than once in the request")
		case !r.allowed(resTopic, rt.Topic, opAlter):
			err = kerr.TopicAuthorizationFailed
		case rt.Assignment != nil && !singleNodeAssignment(rt.Assignment):
			err = withMessage(kerr.InvalidReplicaAssignment, "Spool is a single node: each new partition's replicas must be [0]")
		default:
			err = b.addPartitions(rt.Topic, rt.Count, req.ValidateOnly)
		}
		st.ErrorCode = b.errorCode(err)
		st.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func singleNodeAssignment(as []kmsg.CreatePartitionsRequestTopicAssignment) bool {
	for _, a := range as {
		if len(a.Replicas) != 1 || a.Replicas[0] != nodeID {
			return false
		}
	}
	return true
}
