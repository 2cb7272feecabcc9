package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords: v0-2
//
// Behaviour:
//   - Advances the partition's log start offset to Offset (-1: the high
//     watermark), durably, and answers the new LowWatermark. Records before
//     it are no longer served; whole segments below it are removed by
//     storage. An offset below the current start is a no-op answered with
//     the current start.
//   - Offset above the high watermark: OFFSET_OUT_OF_RANGE. Unknown topic
//     or partition: UNKNOWN_TOPIC_OR_PARTITION.
//
// Version notes:
//   - v1: ThrottleMillis semantics; v2: flexible

func (b *Broker) handleDeleteRecords(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	set := b.topics()
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t := set.byName[rt.Topic]
		denied := !r.allowed(resTopic, rt.Topic, opDelete)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			l := t.partition(rp.Partition)
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if l == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if lso, err := l.DeleteRecordsBefore(rp.Offset); err != nil {
				sp.ErrorCode = b.errorCode(err)
			} else {
				sp.LowWatermark = lso
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
