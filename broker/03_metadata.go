package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-12
//
// Behaviour:
//   - One broker (node 0, the advertised address), which is the controller
//     and the leader of every partition, with itself as the only replica and
//     ISR. Leader epoch is -1 so clients skip epoch fencing.
//   - All topics when the request's topic list is null (v1+) or empty (v0).
//   - Unknown topics are created with DefaultPartitions when the broker
//     allows auto-creation and the request does (always before v4; the
//     AllowAutoTopicCreation field from v4), provided the name is valid;
//     otherwise UNKNOWN_TOPIC_OR_PARTITION, or INVALID_TOPIC_EXCEPTION for
//     an invalid name. Created topics are answered ready, never with
//     LEADER_NOT_AVAILABLE.
//   - v10+: topics may be named by ID; an unknown ID is UNKNOWN_TOPIC_ID.
//   - __consumer_offsets is IsInternal (internal_topics.go); asked for by
//     name it is created, whatever auto-creation says, as Kafka does.
//
// Version notes:
//   - v1: ControllerID, IsInternal, Rack; v2: ClusterID
//   - v4: AllowAutoTopicCreation; v5: OfflineReplicas; v7: LeaderEpoch
//   - v8-10: cluster and topic authorized operations when asked, computed
//     from the ACLs for the principal (authorized_ops.go); v9 flexible
//   - v10: TopicID; v11 drops cluster authorized operations
//   - v13 (REBOOTSTRAP_REQUIRED) is not served

func (b *Broker) handleMetadata(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)

	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = nodeID, r.conn.lis.advHost, r.conn.lis.advPort
	resp.Brokers = append(resp.Brokers, br)
	resp.ClusterID = &b.clusterID
	resp.ControllerID = nodeID
	resp.AuthorizedOperations = r.authorizedOps(req.IncludeClusterAuthorizedOperations, resCluster, clusterName)
	tops := func(name string) int32 {
		return r.authorizedOps(req.IncludeTopicAuthorizedOperations, resTopic, name)
	}

	set := b.topics()
	if req.Topics == nil || req.Version == 0 && len(req.Topics) == 0 {
		for _, t := range set.sorted() {
			// Topics the principal may not describe are left out.
			if r.allowedQuiet(resTopic, t.name, opDescribe) {
				resp.Topics = append(resp.Topics, metadataTopic(t, tops(t.name)))
			}
		}
		return resp, nil
	}
	autoCreate := !b.cfg.DisableAutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			t, ok := set.byID[rt.TopicID]
			if !ok {
				st := kmsg.NewMetadataResponseTopic()
				st.TopicID = rt.TopicID
				st.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			if !r.allowed(resTopic, t.name, opDescribe) {
				st := kmsg.NewMetadataResponseTopic()
				st.TopicID = rt.TopicID
				st.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			resp.Topics = append(resp.Topics, metadataTopic(t, tops(t.name)))
			continue
		}
		name := *rt.Topic
		if !r.allowed(resTopic, name, opDescribe) {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic = kmsg.StringPtr(name)
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, ok := b.topics().byName[name]
		if !ok {
			code := kerr.UnknownTopicOrPartition.Code
			if validTopicName(name) != "" {
				code = kerr.InvalidTopicException.Code
			} else if name == offsetsTopic {
				// Created whatever auto-creation says, as Kafka does.
				b.ensureOffsetsTopic()
				if t, ok = b.topics().byName[name]; ok {
					code = 0
				} else {
					code = kerr.LeaderNotAvailable.Code // retriable
				}
			} else if autoCreate && !r.allowedCreateTopic(name) {
				code = kerr.TopicAuthorizationFailed.Code
			} else if autoCreate {
				var err error
				t, err = b.autoCreate(name)
				code = b.errorCode(err)
			}
			if code != 0 {
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = kmsg.StringPtr(name)
				st.ErrorCode = code
				resp.Topics = append(resp.Topics, st)
				continue
			}
		}
		resp.Topics = append(resp.Topics, metadataTopic(t, tops(t.name)))
	}
	return resp, nil
}

// autoCreate creates a topic for a Metadata request; a concurrent creation
// of the same topic is not an error.
func (b *Broker) autoCreate(name string) (*topic, error) {
	if other := b.topics().collides(name); other != "" {
		return nil, kerr.InvalidTopicException
	}
	cfg, err := b.buildTopicConfig(nil)
	if err != nil {
		return nil, err
	}
	t, err := b.createTopic(name, b.cfg.DefaultPartitions, cfg)
	if err == errTopicExists {
		if t := b.topics().byName[name]; t != nil {
			return t, nil
		}
	}
	if err != nil {
		b.cfg.Logger.Warn("broker: auto-create topic", "topic", name, "err", err)
	} else {
		b.cfg.Logger.Info("broker: auto-created topic", "topic", name, "partitions", len(t.parts))
	}
	return t, err
}

func metadataTopic(t *topic, ops int32) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(t.name)
	st.TopicID = t.id
	st.IsInternal = isInternalTopic(t.name)
	st.AuthorizedOperations = ops
	for p := range t.parts {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = int32(p)
		sp.Leader = nodeID
		sp.LeaderEpoch = -1
		sp.Replicas = []int32{nodeID}
		sp.ISR = []int32{nodeID}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}
