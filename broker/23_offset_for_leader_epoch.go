package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v2-4
//
// Behaviour:
//   - Spool reports leader epoch -1 everywhere, so clients do not normally
//     send this. When one does, the whole log counts as one epoch: the
//     answer is the requested epoch with the high watermark as its end
//     offset (nothing is ever truncated on a single node, so a client never
//     has to).
//   - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
//
// Version notes:
//   - v2: CurrentLeaderEpoch; v3: ReplicaID; v4: flexible

func (b *Broker) handleOffsetForLeaderEpoch(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	set := b.topics()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t := set.byName[rt.Topic]
		denied := !r.allowed(resTopic, rt.Topic, opDescribe)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			if l := t.partition(rp.Partition); denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if l == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				sp.LeaderEpoch, sp.EndOffset = rp.LeaderEpoch, l.HighWatermark()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
