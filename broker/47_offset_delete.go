package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// OffsetDelete: v0
//
// Behaviour (package group): deletes committed offsets of an empty group,
// or of a live consumer group for topics none of its members subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC otherwise); GROUP_ID_NOT_FOUND for an unknown
// group, NON_EMPTY_GROUP for a live group of another protocol type.
func (b *Broker) handleOffsetDelete(r *request) (kmsg.Response, error) {
	return b.groups.OffsetDelete(r.ctx, r.kreq.(*kmsg.OffsetDeleteRequest)), nil
}
