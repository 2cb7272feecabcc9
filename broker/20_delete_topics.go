package broker

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics: v0-6
//
// Behaviour:
//   - Removes the topic from the metadata file (durably), then deletes its
//     partition logs. In-flight produces and fetches on it end with
//     UNKNOWN_TOPIC_OR_PARTITION. A topic of the same name can be created
//     again at once and starts empty.
//   - An internal topic (__consumer_offsets): INVALID_TOPIC_EXCEPTION.
//   - Unknown name: UNKNOWN_TOPIC_OR_PARTITION; unknown ID (v6):
//     UNKNOWN_TOPIC_ID.
//
// Version notes:
//   - v1: ThrottleMillis; v4: flexible; v5: ErrorMessage
//   - v6: topics by name or ID

func (b *Broker) handleDeleteTopics(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	topics := req.Topics
	if req.Version < 6 {
		topics = nil
		for _, name := range req.TopicNames {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			topics = append(topics, rt)
		}
	}
	for _, rt := range topics {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		} else if t, ok := b.topics().byID[rt.TopicID]; ok {
			name = t.name
			st.Topic = kmsg.StringPtr(name)
		} else {
			st.ErrorCode = kerr.UnknownTopicID.Code
			st.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("no topic with ID %s", uuid.UUID(rt.TopicID)))
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !r.allowed(resTopic, name, opDelete) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if t, ok := b.topics().byName[name]; ok {
			st.TopicID = t.id
		}
		if isInternalTopic(name) {
			st.ErrorCode = kerr.InvalidTopicException.Code
			st.ErrorMessage = kmsg.StringPtr("cannot delete internal topic " + name)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if err := b.deleteTopic(name); err != nil {
			st.ErrorCode = b.errorCode(err)
			st.ErrorMessage = errMessage(err)
		} else {
			b.cfg.Logger.Info("broker: deleted topic", "topic", name)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
