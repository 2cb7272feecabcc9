package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v2-9
//
// Behaviour (package group): answered once the commit is durable (fsynced
// unless the broker runs with fsync=never). Commits to a partition that does
// not exist get UNKNOWN_TOPIC_OR_PARTITION; metadata over 4096 bytes
// OFFSET_METADATA_TOO_LARGE.
//
// Version notes:
//   - v0-1 (ZooKeeper-era) are not served; v2-4's retention time is ignored
//     (the broker-wide offsets retention applies); v6: leader epoch; v7:
//     group.instance.id. v10 (topic IDs) is not served.

func (b *Broker) handleOffsetCommit(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetCommitRequest)
	groupOK := r.allowed(resGroup, req.Group, opRead)
	var allowed, denied []kmsg.OffsetCommitRequestTopic
	for _, t := range req.Topics {
		if groupOK && r.allowed(resTopic, t.Topic, opRead) {
			allowed = append(allowed, t)
		} else {
			denied = append(denied, t)
		}
	}
	var resp *kmsg.OffsetCommitResponse
	if len(allowed) > 0 {
		req.Topics = allowed
		resp = b.groups.OffsetCommit(r.ctx, req)
	} else {
		resp = req.ResponseKind().(*kmsg.OffsetCommitResponse)
	}
	code := groupDenied
	if groupOK {
		code = kerr.TopicAuthorizationFailed.Code
	}
	for _, t := range denied {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
