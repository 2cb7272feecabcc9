package console

import (
	"errors"
	"net/http"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// kafkaStatus is the HTTP status for a broker's answer: what the client
// got wrong is 4xx, what the broker failed at is 502. A missing topic is
// unknownTopic: 404 where the topic is the page's subject, 400 where it
// is a parameter of the request (a group's offsets reset to a topic that
// does not exist).
func kafkaStatus(err error, unknownTopic int) int {
	var ae *kadm.AuthError
	if errors.As(err, &ae) {
		return http.StatusForbidden
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return http.StatusBadGateway
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.UnknownTopicID:
		return unknownTopic
	case kerr.GroupIDNotFound:
		return http.StatusNotFound
	case kerr.TopicAlreadyExists, kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.RebalanceInProgress,
		kerr.NonEmptyGroup, kerr.GroupSubscribedToTopic, kerr.FencedInstanceID:
		return http.StatusConflict
	case kerr.InvalidTopicException, kerr.InvalidPartitions, kerr.InvalidReplicationFactor, kerr.InvalidConfig,
		kerr.InvalidRequest, kerr.PolicyViolation, kerr.InvalidReplicaAssignment, kerr.UnsupportedCompressionType:
		return http.StatusBadRequest
	case kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed:
		return http.StatusForbidden
	}
	return http.StatusBadGateway
}
