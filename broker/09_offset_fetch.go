package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: v1-9
//
// Behaviour (package group): a partition without a committed offset, or a
// group that does not exist, gets offset -1 and no error, as Kafka answers.
// No topics (null) means every committed offset of the group.
//
// Version notes:
//   - v2: group-level error; v5: leader epoch; v7: RequireStable (always
//     stable: no transactions); v8: several groups per request (KIP-709);
//     v9: member ID and epoch (for KIP-848 groups, ignored).

func (b *Broker) handleOffsetFetch(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	resp := b.groups.OffsetFetch(r.ctx, req)
	if !b.sec.authz.Enabled() {
		return resp, nil
	}
	if req.Version < 8 {
		if !r.allowed(resGroup, req.Group, opDescribe) {
			resp.Topics, resp.ErrorCode = nil, groupDenied
			return resp, nil
		}
		resp.Topics = filterFetchTopics(r, resp.Topics, req.Topics == nil,
			func(t *kmsg.OffsetFetchResponseTopic) string { return t.Topic },
			func(t *kmsg.OffsetFetchResponseTopic) {
				for j := range t.Partitions {
					t.Partitions[j].ErrorCode, t.Partitions[j].Offset = kerr.TopicAuthorizationFailed.Code, -1
				}
			})
		return resp, nil
	}
	for i := range resp.Groups {
		g := &resp.Groups[i]
		if !r.allowed(resGroup, g.Group, opDescribe) {
			g.Topics, g.ErrorCode = nil, groupDenied
			continue
		}
		all := true
		for _, rg := range req.Groups {
			if rg.Group == g.Group && rg.Topics != nil {
				all = false
			}
		}
		g.Topics = filterFetchTopics(r, g.Topics, all,
			func(t *kmsg.OffsetFetchResponseGroupTopic) string { return t.Topic },
			func(t *kmsg.OffsetFetchResponseGroupTopic) {
				for j := range t.Partitions {
					t.Partitions[j].ErrorCode, t.Partitions[j].Offset = kerr.TopicAuthorizationFailed.Code, -1
				}
			})
	}
	return resp, nil
}

// filterFetchTopics keeps the topics of an OffsetFetch answer the principal
// may describe. When the request named its topics (all is false), a refused
// topic stays in the answer with TOPIC_AUTHORIZATION_FAILED on each of its
// partitions (deny marks them), as Kafka answers; when it asked for every
// committed offset, refused topics are left out without a word. T is the
// topic type of the v0-7 answer or of a v8+ group's.
func filterFetchTopics[T any](r *request, ts []T, all bool, name func(*T) string, deny func(*T)) []T {
	var kept []T
	for i := range ts {
		t := &ts[i]
		switch ok := r.allowedQuiet(resTopic, name(t), opDescribe); {
		case ok:
			kept = append(kept, *t)
		case !all:
			deny(t)
			kept = append(kept, *t)
		}
	}
	return kept
}
