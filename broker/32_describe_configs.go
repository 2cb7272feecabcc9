package broker

import (
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-4
//
// Behaviour:
//   - Topic resources: every topic config Spool supports (topicconfig.go),
//     each with its value, IsDefault/Source (DYNAMIC_TOPIC_CONFIG when set
//     on the topic, DEFAULT_CONFIG otherwise) and type. Unknown topic:
//     UNKNOWN_TOPIC_OR_PARTITION.
//   - Broker resources (name "0", or "" for the cluster default): the
//     broker's settings, all read-only (STATIC_BROKER_CONFIG): they come
//     from `spool serve` flags. Another broker name: INVALID_REQUEST.
//   - ConfigNames filters (null: all); no synonyms or documentation.
//   - Other resource types: INVALID_REQUEST.
//
// Version notes:
//   - v1: Source, IncludeSynonyms; v3: ConfigType, IncludeDocumentation
//   - v4: flexible

func (b *Broker) handleDescribeConfigs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool { return rr.ConfigNames == nil || slices.Contains(rr.ConfigNames, name) }
		add := func(name, value string, typ kmsg.ConfigType, src kmsg.ConfigSource, readOnly bool) {
			if !want(name) {
				return
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ConfigType, c.Source, c.ReadOnly = name, kmsg.StringPtr(value), typ, src, readOnly
			c.IsDefault = src == kmsg.ConfigSourceDefaultConfig
			sr.Configs = append(sr.Configs, c)
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := b.topics().byName[rr.ResourceName]
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				sr.ErrorMessage = kmsg.StringPtr("unknown topic " + strconv.Quote(rr.ResourceName))
				break
			}
			for _, d := range topicConfigDefs {
				v, set := b.configValue(t.cfg, d)
				src := kmsg.ConfigSourceDefaultConfig
				if set {
					src = kmsg.ConfigSourceDynamicTopicConfig
				}
				add(d.name, v, d.typ, src, false)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(nodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = kmsg.StringPtr("unknown broker " + strconv.Quote(rr.ResourceName) + ": Spool is node 0")
				break
			}
			for _, c := range b.brokerConfigs() {
				add(c.name, c.value, c.typ, kmsg.ConfigSourceStaticBrokerConfig, true)
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = kmsg.StringPtr("unsupported resource type " + rr.ResourceType.String())
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

type brokerConfig struct {
	name, value string
	typ         kmsg.ConfigType
}

// brokerConfigs are the read-only broker configs DescribeConfigs reports,
// named as Kafka names them.
func (b *Broker) brokerConfigs() []brokerConfig {
	def := defaultLogConfig()
	return []brokerConfig{
		{"advertised.listeners", "PLAINTEXT://" + b.advertised(), kmsg.ConfigTypeList},
		{"auto.create.topics.enable", strconv.FormatBool(!b.cfg.DisableAutoCreateTopics), kmsg.ConfigTypeBoolean},
		{"broker.id", strconv.Itoa(int(nodeID)), kmsg.ConfigTypeInt},
		{"default.replication.factor", "1", kmsg.ConfigTypeInt},
		{"listeners", "PLAINTEXT://" + b.Addr(), kmsg.ConfigTypeList},
		{"log.cleanup.policy", "delete", kmsg.ConfigTypeList},
		{"log.dirs", b.cfg.DataDir, kmsg.ConfigTypeString},
		{"log.flush.policy", strings.ToLower(b.cfg.Fsync.String()), kmsg.ConfigTypeString},
		{"log.message.timestamp.type", "CreateTime", kmsg.ConfigTypeString},
		{"log.retention.bytes", strconv.FormatInt(def.RetentionBytes, 10), kmsg.ConfigTypeLong},
		{"log.retention.ms", durationMs(def.RetentionMs), kmsg.ConfigTypeLong},
		{"log.roll.ms", durationMs(def.SegmentMs), kmsg.ConfigTypeLong},
		{"log.segment.bytes", strconv.FormatInt(def.SegmentBytes, 10), kmsg.ConfigTypeInt},
		{"message.max.bytes", strconv.Itoa(int(b.cfg.MaxMessageBytes)), kmsg.ConfigTypeInt},
		{"min.insync.replicas", "1", kmsg.ConfigTypeInt},
		{"node.id", strconv.Itoa(int(nodeID)), kmsg.ConfigTypeInt},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions)), kmsg.ConfigTypeInt},
		{"socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxFrameBytes)), kmsg.ConfigTypeInt},
	}
}
