package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// Authorized operations (KIP-430): Metadata, DescribeGroups and
// DescribeCluster report, when the request asks, a bit field of the ACL
// operations the caller may perform on each resource. Spool has no
// authorizer yet, and Kafka without an authorizer reports every operation
// the resource type supports; so does Spool. When not asked, the field is
// Kafka's "not requested" value.

// unknownAuthorizedOps is Kafka's "authorized operations not requested".
const unknownAuthorizedOps = -2147483648

func opBits(ops ...kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		bits |= 1 << op
	}
	return bits
}

// The operations each resource type supports, as Kafka's
// AclEntry.supportedOperations lists them.
var (
	topicOps   = opBits(kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs)
	groupOps   = opBits(kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete)
	clusterOps = opBits(kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe)
)

// authorizedOps returns ops when they were asked for, else "not requested".
func authorizedOps(asked bool, ops int32) int32 {
	if asked {
		return ops
	}
	return unknownAuthorizedOps
}
