package broker

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-4
//
// Behaviour:
//   - Topic resources: every topic config Spool applies (topicconfig.go),
//     each with the value in effect and where it comes from: the topic's
//     override (DYNAMIC_TOPIC_CONFIG), a dynamic broker config
//     (DYNAMIC_BROKER_CONFIG for node 0, DYNAMIC_DEFAULT_BROKER_CONFIG for
//     the cluster-wide default), a `spool serve` flag
//     (STATIC_BROKER_CONFIG) or Kafka's default (DEFAULT_CONFIG). With
//     IncludeSynonyms the whole chain, as Kafka reports it. Unknown topic:
//     UNKNOWN_TOPIC_OR_PARTITION.
//   - Broker resource "0": the broker's settings with Kafka's names; the
//     topic defaults (log.retention.ms, message.max.bytes, ...) are
//     alterable (ReadOnly false), the rest come from flags (read-only).
//     Broker resource "" (the cluster-wide default): only the dynamic
//     cluster-wide configs that are set, as Kafka. Another broker name:
//     INVALID_REQUEST.
//   - ConfigNames filters (null: all). IncludeDocumentation (v3+): what
//     each topic config (and its broker-wide synonym) does in Spool
//     (configdocs.go).
//   - Other resource types: INVALID_REQUEST.
//
// Version notes:
//   - v1: Source, IncludeSynonyms; v3: ConfigType, IncludeDocumentation
//   - v4: flexible

func (b *Broker) handleDescribeConfigs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	set := b.topics()
	dyn := set.dyn
	if dyn == nil {
		dyn = &dynamicConfigs{}
	}
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool { return rr.ConfigNames == nil || slices.Contains(rr.ConfigNames, name) }
		add := func(name string, typ kmsg.ConfigType, readOnly bool, chain []synonym, doc string) {
			if !want(name) {
				return
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ConfigType, c.Source, c.ReadOnly = name, kmsg.StringPtr(chain[0].value), typ, chain[0].src, readOnly
			if req.IncludeDocumentation && doc != "" {
				c.Documentation = kmsg.StringPtr(doc)
			}
			c.IsDefault = chain[0].src == kmsg.ConfigSourceDefaultConfig
			if req.IncludeSynonyms {
				for _, s := range chain {
					cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					cs.Name, cs.Value, cs.Source = s.name, kmsg.StringPtr(s.value), s.src
					c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
				}
			}
			sr.Configs = append(sr.Configs, c)
		}
		if err := r.configDenied(rr.ResourceType, rr.ResourceName, opDescribeConfigs); err != nil {
			sr.ErrorCode = b.errorCode(err)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := set.byName[rr.ResourceName]
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				sr.ErrorMessage = kmsg.StringPtr("unknown topic " + strconv.Quote(rr.ResourceName))
				break
			}
			for _, d := range topicConfigDefs {
				add(d.name, d.typ, false, b.topicChain(t.cfg, d), configDocs[d.name])
			}
		case kmsg.ConfigResourceTypeBroker:
			switch rr.ResourceName {
			case "":
				for _, d := range topicConfigDefs {
					if v, ok := dyn.cluster[d.broker]; ok && d.broker != "" {
						add(d.broker, d.typ, false, []synonym{{d.broker, v, kmsg.ConfigSourceDynamicDefaultBrokerConfig}}, configDocs[d.name])
					}
				}
			case strconv.Itoa(int(nodeID)):
				for _, c := range b.brokerConfigs() {
					add(c.name, c.typ, true, []synonym{{c.name, c.value, kmsg.ConfigSourceStaticBrokerConfig}}, "")
				}
				for _, d := range topicConfigDefs {
					if d.broker != "" {
						add(d.broker, d.typ, !d.dynamic, b.brokerChain(d, dyn), configDocs[d.name])
					}
				}
			default:
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = kmsg.StringPtr("unknown broker " + strconv.Quote(rr.ResourceName) + ": Spool is node 0")
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
// named as Kafka names them; they come from `spool serve` flags. (The
// alterable ones are the topic defaults in topicConfigDefs.)
func (b *Broker) brokerConfigs() []brokerConfig {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	delay := max(b.cfg.GroupInitialRebalanceDelay, 0)
	return []brokerConfig{
		{"advertised.listeners", "PLAINTEXT://" + b.advertised(), kmsg.ConfigTypeList},
		{"auto.create.topics.enable", strconv.FormatBool(!b.cfg.DisableAutoCreateTopics), kmsg.ConfigTypeBoolean},
		{"broker.id", strconv.Itoa(int(nodeID)), kmsg.ConfigTypeInt},
		{"default.replication.factor", "1", kmsg.ConfigTypeInt},
		{"group.initial.rebalance.delay.ms", ms(delay), kmsg.ConfigTypeInt},
		{"group.max.session.timeout.ms", ms(b.cfg.GroupMaxSessionTimeout), kmsg.ConfigTypeInt},
		{"group.min.session.timeout.ms", ms(b.cfg.GroupMinSessionTimeout), kmsg.ConfigTypeInt},
		{"listeners", "PLAINTEXT://" + b.Addr(), kmsg.ConfigTypeList},
		{"log.dirs", b.cfg.DataDir, kmsg.ConfigTypeString},
		{"log.flush.policy", strings.ToLower(b.cfg.Fsync.String()), kmsg.ConfigTypeString},
		{"node.id", strconv.Itoa(int(nodeID)), kmsg.ConfigTypeInt},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions)), kmsg.ConfigTypeInt},
		{"socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxFrameBytes)), kmsg.ConfigTypeInt},
	}
}
