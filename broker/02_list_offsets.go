package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-8
//
// Behaviour, by the requested Timestamp:
//   - -2 (earliest) and -4 (earliest local, KIP-1005): the log start offset.
//   - -1 (latest): the high watermark (= last stable offset: no txns).
//   - -3 (max timestamp, KIP-734): the offset and timestamp of the record
//     with the largest timestamp; -1/-1 for an empty log.
//   - >= 0: the first record whose timestamp is >= Timestamp, with its
//     timestamp; -1/-1 when there is none (record-level, as Kafka).
//   - Any other negative value: INVALID_REQUEST for that partition.
//   - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
//   - LeaderEpoch is -1 (Spool has no epochs).
//
// Version notes:
//   - v1: Timestamp and a single Offset (v0's OldStyleOffsets not served)
//   - v2: IsolationLevel; v4: LeaderEpoch; v6: flexible
//   - v7: max timestamp (-3); v8: earliest local (-4)

func (b *Broker) handleListOffsets(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	set := b.topics()
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := set.byName[rt.Topic]
		denied := !r.allowed(resTopic, rt.Topic, opDescribe)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			l := t.partition(rp.Partition)
			if denied {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if l == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			var err error
			switch ts := rp.Timestamp; {
			case ts == -2 || ts == -4 && req.Version >= 8:
				sp.Offset = l.LogStartOffset()
			case ts == -1:
				sp.Offset = l.HighWatermark()
			case ts == -3 && req.Version >= 7:
				sp.Offset, sp.Timestamp, err = l.MaxTimestamp()
			case ts >= 0:
				sp.Offset, sp.Timestamp, err = l.OffsetForTimestamp(ts)
			default:
				sp.ErrorCode = kerr.InvalidRequest.Code
			}
			if err != nil {
				sp.ErrorCode = b.errorCode(err)
				sp.Offset, sp.Timestamp = -1, -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
