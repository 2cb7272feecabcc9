package broker

import "github.com/twmb/franz-go/pkg/kmsg"

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
	return b.groups.OffsetFetch(r.ctx, r.kreq.(*kmsg.OffsetFetchRequest)), nil
}
