package broker

import "github.com/twmb/franz-go/pkg/kerr"

// The ACL checks of the group APIs (in their NN_*.go handlers) are kept out
// of the coordinator (which knows
// nothing of principals): each API's required operations as Kafka's
// KafkaApis checks them. Join, Sync, Heartbeat, Leave and OffsetCommit need
// Read on the group (and OffsetCommit Read on each topic); OffsetFetch,
// DescribeGroups and FindCoordinator Describe; DeleteGroups and
// OffsetDelete Delete; ListGroups lists the groups the principal may
// describe (all of them with Describe on the cluster).

// groupDenied is the error of a request the group ACLs refuse.
var groupDenied = kerr.GroupAuthorizationFailed.Code
