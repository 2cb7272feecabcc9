package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/storage"
)

// CreateTopics: v0-7
//
// Behaviour, per topic:
//   - Name: Kafka's rules ([a-zA-Z0-9._-], 1-249 characters, not "." or
//     ".."), and no collision with an existing topic that differs only by
//     '.' versus '_'; else INVALID_TOPIC_EXCEPTION. A name listed twice in
//     one request: INVALID_REQUEST for it.
//   - Existing topic: TOPIC_ALREADY_EXISTS.
//   - NumPartitions: -1 means Config.DefaultPartitions; otherwise 1 to
//     10000, else INVALID_PARTITIONS.
//   - ReplicationFactor: -1 or 1 (one node); else INVALID_REPLICATION_FACTOR.
//     A ReplicaAssignment may only name node 0, once per partition; else
//     INVALID_REPLICA_ASSIGNMENT.
//   - Configs: the topic configs of topicconfig.go, validated; else
//     INVALID_CONFIG with a message naming the config.
//   - ValidateOnly: every check, nothing created.
//   - The topic is durable (logs created, metadata file synced) before the
//     response.
//
// Version notes:
//   - v1: ErrorMessage, ValidateOnly; v4: -1 partitions/replication factor
//   - v5: flexible; NumPartitions, ReplicationFactor and Configs in the
//     response; v7: TopicID

func (b *Broker) handleCreateTopics(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("topic %q is listed more than once in the request", rt.Topic))
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !r.allowedCreateTopic(rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := b.createTopicReq(&rt, req.ValidateOnly)
		if err != nil {
			st.ErrorCode = b.errorCode(err)
			st.ErrorMessage = errMessage(err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.id
		st.NumPartitions = int32(len(t.parts))
		st.ReplicationFactor = 1
		for _, d := range topicConfigDefs {
			chain := b.topicChain(t.cfg, d)
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name, c.Value, c.Source = d.name, kmsg.StringPtr(chain[0].value), int8(chain[0].src)
			st.Configs = append(st.Configs, c)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// createTopicReq validates one topic of a CreateTopics request and, unless
// validateOnly, creates it. With validateOnly the returned topic has no logs
// but len(parts) partitions as nil entries.
func (b *Broker) createTopicReq(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (*topic, error) {
	if msg := validTopicName(rt.Topic); msg != "" {
		return nil, withMessage(kerr.InvalidTopicException, msg)
	}
	set := b.topics()
	if _, ok := set.byName[rt.Topic]; ok {
		return nil, fmt.Errorf("%w: topic %q already exists", errTopicExists, rt.Topic)
	}
	if other := set.collides(rt.Topic); other != "" {
		return nil, withMessage(kerr.InvalidTopicException, fmt.Sprintf("topic %q collides with existing topic %q ('.' and '_' are the same in metric names)", rt.Topic, other))
	}
	n := rt.NumPartitions
	if n == -1 {
		n = b.cfg.DefaultPartitions
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nil, withMessage(kerr.InvalidRequest, "both partition count and replica assignment were given")
		}
		n = int32(len(rt.ReplicaAssignment))
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) || len(a.Replicas) != 1 || a.Replicas[0] != nodeID {
				return nil, withMessage(kerr.InvalidReplicaAssignment, "Spool is a single node: every partition 0..n-1 once, with replicas [0]")
			}
		}
	}
	if n < 1 || n > maxPartitions {
		return nil, fmt.Errorf("%w: number of partitions must be in [1, %d] (got %d)", errInvalidPartitions, maxPartitions, rt.NumPartitions)
	}
	if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 && len(rt.ReplicaAssignment) == 0 {
		return nil, withMessage(kerr.InvalidReplicationFactor, fmt.Sprintf("replication factor %d is larger than the number of brokers (1)", rt.ReplicationFactor))
	}
	overrides := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue // null means "the default", as Kafka treats it
		}
		overrides[c.Name] = *c.Value
	}
	cfg, err := b.buildTopicConfig(overrides)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidConfig, err)
	}
	if validateOnly {
		return &topic{name: rt.Topic, cfg: cfg, parts: make([]*storage.Log, n)}, nil
	}
	t, err := b.createTopic(rt.Topic, n, cfg)
	if err != nil {
		return nil, err
	}
	b.cfg.Logger.Info("broker: created topic", "topic", t.name, "partitions", n)
	return t, nil
}
