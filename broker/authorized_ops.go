package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// Authorized operations (KIP-430): Metadata (v8+), DescribeGroups (v3+) and
// DescribeCluster report, when the request asks, a bit field (bit n set:
// operation n is allowed) of the ACL operations the requesting principal
// may perform on each resource, as Kafka's AuthHelper computes it: each
// operation the resource type supports is put to the authorizer, with the
// usual implications (Read, Write, Delete and Alter imply Describe;
// AlterConfigs implies DescribeConfigs) and DENY overriding ALLOW. With the
// authorizer off, and for super users, that is every operation the type
// supports. When not asked, the field is Kafka's "not requested" value.
//
// A decision takes no lock and allocates nothing (package auth), and the
// operations are computed only when asked, so a Metadata request that does
// not ask pays nothing.

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
	topicOpList   = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	groupOpList   = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete}
	clusterOpList = []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe}
)

func supportedOps(rt auth.ResourceType) []kmsg.ACLOperation {
	switch rt {
	case resTopic:
		return topicOpList
	case resGroup:
		return groupOpList
	case resCluster:
		return clusterOpList
	}
	return nil
}

// authorizedOps returns, when asked, the bit field of the operations the
// request's principal may perform on the resource, else "not requested".
func (r *request) authorizedOps(asked bool, rt auth.ResourceType, name string) int32 {
	if !asked {
		return unknownAuthorizedOps
	}
	ops := supportedOps(rt)
	if !r.conn.b.sec.authz.Enabled() {
		return opBits(ops...)
	}
	var bits int32
	for _, op := range ops {
		if r.allowedQuiet(rt, name, op) {
			bits |= 1 << op
		}
	}
	return bits
}
