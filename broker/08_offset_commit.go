package broker

import "github.com/twmb/franz-go/pkg/kmsg"

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
	return b.groups.OffsetCommit(r.ctx, r.kreq.(*kmsg.OffsetCommitRequest)), nil
}
