package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// handler answers one request. It returns the response (nil: send nothing,
// as for an acks=0 produce) or an error, which closes the connection. Errors
// that Kafka reports in a response (per topic, per partition) belong in the
// response, never in the error.
type handler func(b *Broker, r *request) (kmsg.Response, error)

// api is one served API key: the version range we accept and advertise in
// ApiVersions, and its handler.
type api struct {
	key      int16
	min, max int16
	handle   handler
}

// apiTable is every API key the broker serves. ApiVersions is generated
// from it; a request for a key not listed here, or for a version outside
// its range, closes the connection as Kafka does (ApiVersions excepted).
// Each handler lives in a file named after its key (00_produce.go, ...),
// which explains the range.
func apiTable() []api {
	return []api{
		{key: 0, min: 0, max: 11, handle: (*Broker).handleProduce},
		{key: 1, min: 4, max: 16, handle: (*Broker).handleFetch},
		{key: 2, min: 1, max: 8, handle: (*Broker).handleListOffsets},
		{key: 3, min: 0, max: 12, handle: (*Broker).handleMetadata},
		{key: 18, min: 0, max: 4, handle: (*Broker).handleApiVersions},
		{key: 19, min: 0, max: 7, handle: (*Broker).handleCreateTopics},
		{key: 20, min: 0, max: 6, handle: (*Broker).handleDeleteTopics},
		{key: 21, min: 0, max: 2, handle: (*Broker).handleDeleteRecords},
		{key: 23, min: 2, max: 4, handle: (*Broker).handleOffsetForLeaderEpoch},
		{key: 32, min: 0, max: 4, handle: (*Broker).handleDescribeConfigs},
		{key: 33, min: 0, max: 2, handle: (*Broker).handleAlterConfigs},
		{key: 35, min: 0, max: 4, handle: (*Broker).handleDescribeLogDirs},
		{key: 37, min: 0, max: 3, handle: (*Broker).handleCreatePartitions},
		{key: 44, min: 0, max: 1, handle: (*Broker).handleIncrementalAlterConfigs},
		{key: 60, min: 0, max: 1, handle: (*Broker).handleDescribeCluster},
		// Security: SASL, ACLs and SCRAM users (security.go).
		{key: 17, min: 0, max: 1, handle: (*Broker).handleSaslHandshake},
		{key: 36, min: 0, max: 2, handle: (*Broker).handleSaslAuthenticate},
		{key: 29, min: 1, max: 3, handle: (*Broker).handleDescribeAcls},
		{key: 30, min: 1, max: 3, handle: (*Broker).handleCreateAcls},
		{key: 31, min: 1, max: 3, handle: (*Broker).handleDeleteAcls},
		{key: 50, min: 0, max: 0, handle: (*Broker).handleDescribeUserScramCredentials},
		{key: 51, min: 0, max: 0, handle: (*Broker).handleAlterUserScramCredentials},
		// Group coordinator, committed offsets, idempotent producers.
		{key: 8, min: 2, max: 9, handle: (*Broker).handleOffsetCommit},
		{key: 9, min: 1, max: 9, handle: (*Broker).handleOffsetFetch},
		{key: 10, min: 0, max: 4, handle: (*Broker).handleFindCoordinator},
		{key: 11, min: 0, max: 9, handle: (*Broker).handleJoinGroup},
		{key: 12, min: 0, max: 4, handle: (*Broker).handleHeartbeat},
		{key: 13, min: 0, max: 5, handle: (*Broker).handleLeaveGroup},
		{key: 14, min: 0, max: 5, handle: (*Broker).handleSyncGroup},
		{key: 15, min: 0, max: 5, handle: (*Broker).handleDescribeGroups},
		{key: 16, min: 0, max: 5, handle: (*Broker).handleListGroups},
		{key: 22, min: 0, max: 4, handle: (*Broker).handleInitProducerID},
		{key: 42, min: 0, max: 2, handle: (*Broker).handleDeleteGroups},
		{key: 47, min: 0, max: 0, handle: (*Broker).handleOffsetDelete},
	}
}

// buildAPIs indexes a table by key.
func buildAPIs(table []api) []api {
	var n int16
	for _, a := range table {
		n = max(n, a.key+1)
	}
	apis := make([]api, n)
	for _, a := range table {
		if apis[a.key].handle != nil {
			panic("broker: API key listed twice in apiTable")
		}
		apis[a.key] = a
	}
	return apis
}

// served returns the served APIs in key order.
func (b *Broker) served() []api {
	var out []api
	for _, a := range b.apis {
		if a.handle != nil {
			out = append(out, a)
		}
	}
	return out
}

// Versions returns the served API keys with their version ranges, as
// ApiVersions advertises them: key -> [min, max].
func (b *Broker) Versions() map[int16][2]int16 {
	out := make(map[int16][2]int16)
	for _, a := range b.served() {
		out[a.key] = [2]int16{a.min, a.max}
	}
	return out
}
