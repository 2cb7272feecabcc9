// Package auth is Spool's one security model for every listener: the
// principal a connection or HTTP request acts as (from SASL, a TLS client
// certificate or a bearer token), SCRAM and PLAIN authentication against
// salted, hashed credentials, and an authorizer with Kafka's ACL model.
//
// Principals are Kafka's strings, "User:alice". ACLs are Kafka's: a
// principal (or "User:*"), a host (or "*"), a resource type (Topic, Group,
// Cluster, TransactionalId), a resource name with a LITERAL (exact, or "*"
// for all) or PREFIXED pattern, an operation and ALLOW or DENY. Decisions
// follow Kafka's authorizer:
//
//   - super users may do everything;
//   - a matching DENY for the operation (or for All) refuses, whatever
//     allows it;
//   - otherwise a matching ALLOW for the operation, for All, or for an
//     operation that implies it (Read, Write, Delete and Alter imply
//     Describe; AlterConfigs implies DescribeConfigs) permits;
//   - nothing matching refuses.
//
// The authorizer is off (everything allowed) until it is forced on or the
// first ACL exists, as a broker without authorizer.class.name behaves.
//
// Nothing here does I/O: the broker persists the ACL and credential sets
// (their JSON forms) in its data directory.
package auth
