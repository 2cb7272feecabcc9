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
		resp.Topics = filterFetchTopics(r, resp.Topics, req.Topics == nil)
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
		var kept []kmsg.OffsetFetchResponseGroupTopic
		for _, t := range g.Topics {
			switch ok := r.allowedQuiet(resTopic, t.Topic, opDescribe); {
			case ok:
				kept = append(kept, t)
			case !all:
				for j := range t.Partitions {
					t.Partitions[j].ErrorCode, t.Partitions[j].Offset = kerr.TopicAuthorizationFailed.Code, -1
				}
				kept = append(kept, t)
			}
		}
		g.Topics = kept
	}
	return resp, nil
}

func filterFetchTopics(r *request, ts []kmsg.OffsetFetchResponseTopic, all bool) []kmsg.OffsetFetchResponseTopic {
	var kept []kmsg.OffsetFetchResponseTopic
	for _, t := range ts {
		switch ok := r.allowedQuiet(resTopic, t.Topic, opDescribe); {
		case ok:
			kept = append(kept, t)
		case !all:
			for j := range t.Partitions {
				t.Partitions[j].ErrorCode, t.Partitions[j].Offset = kerr.TopicAuthorizationFailed.Code, -1
			}
			kept = append(kept, t)
		}
	}
	return kept
}
