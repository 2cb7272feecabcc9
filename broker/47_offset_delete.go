package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: v0
//
// Behaviour (package group): deletes committed offsets of an empty group,
// or of a live consumer group for topics none of its members subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC otherwise); GROUP_ID_NOT_FOUND for an unknown
// group, NON_EMPTY_GROUP for a live group of another protocol type.

func (b *Broker) handleOffsetDelete(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	if !r.allowed(resGroup, req.Group, opDelete) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = groupDenied
		return resp, nil
	}
	var allowed, denied []kmsg.OffsetDeleteRequestTopic
	for _, t := range req.Topics {
		if r.allowed(resTopic, t.Topic, opRead) {
			allowed = append(allowed, t)
		} else {
			denied = append(denied, t)
		}
	}
	req.Topics = allowed
	resp := b.groups.OffsetDelete(r.ctx, req)
	for _, t := range denied {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
