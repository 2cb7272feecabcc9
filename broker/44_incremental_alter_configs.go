package broker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs: v0-1
//
// Behaviour:
//   - Topic resources: SET, DELETE (back to the broker default), and
//     APPEND/SUBTRACT on list configs (cleanup.policy), which add the values
//     not yet in the list or remove the given ones, starting from the value
//     in effect (Kafka: the override, or the config's default). APPEND or
//     SUBTRACT on a config that is not a list: INVALID_CONFIG. The resulting
//     config is validated as a whole (INVALID_CONFIG naming the config,
//     nothing changed), then persisted in the metadata file and applied to
//     every partition log before the response. A config named twice in one
//     resource: INVALID_REQUEST. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//   - Broker resources ("0": this node; "": the cluster-wide default): the
//     same operations on the dynamic broker configs, Kafka's dynamic
//     topic defaults (log.retention.ms, log.segment.bytes,
//     message.max.bytes, ...: DescribeConfigs shows them ReadOnly false).
//     They are persisted and applied at once to every topic that does not
//     override them. A config that comes only from flags, or that Spool
//     does not know: INVALID_CONFIG with a message. Another broker name:
//     INVALID_REQUEST.
//   - ValidateOnly: every check, nothing changed.
//
// Version notes:
//   - v1: flexible

func (b *Broker) handleIncrementalAlterConfigs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(overrides map[string]string, lookup configLookup) (map[string]string, error) {
			seen := make(map[string]bool, len(rr.Configs))
			for _, c := range rr.Configs {
				if seen[c.Name] {
					return nil, withMessage(kerr.InvalidRequest, fmt.Sprintf("config %s is altered more than once", c.Name))
				}
				seen[c.Name] = true
				d, inEffect, err := lookup(c.Name)
				if err != nil {
					return nil, fmt.Errorf("%w: %v", errInvalidConfig, err)
				}
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if c.Value == nil {
						return nil, fmt.Errorf("%w: config %s: SET needs a value", errInvalidConfig, c.Name)
					}
					overrides[c.Name] = *c.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(overrides, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if d.typ != kmsg.ConfigTypeList {
						return nil, fmt.Errorf("%w: config %s is not a list: %s is not allowed", errInvalidConfig, c.Name, c.Op)
					}
					if c.Value == nil {
						return nil, fmt.Errorf("%w: config %s: %s needs a value", errInvalidConfig, c.Name, c.Op)
					}
					cur, ok := overrides[c.Name]
					if !ok {
						cur = inEffect
					}
					overrides[c.Name] = alterList(cur, *c.Value, c.Op == kmsg.IncrementalAlterConfigOpAppend)
				default:
					return nil, fmt.Errorf("%w: config %s: unknown operation %d", errInvalidConfig, c.Name, c.Op)
				}
			}
			return overrides, nil
		})
		if derr := r.configDenied(rr.ResourceType, rr.ResourceName, opAlterConfigs); derr != nil {
			err = derr
		}
		sr.ErrorCode = b.errorCode(err)
		sr.ErrorMessage = errMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// alterList appends (or subtracts) the comma-separated values of v to (from)
// the list cur, as Kafka's APPEND and SUBTRACT do: no value twice, order
// kept.
func alterList(cur, v string, add bool) string {
	split := func(s string) []string {
		var out []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	list, vals := split(cur), split(v)
	if add {
		for _, x := range vals {
			if !slices.Contains(list, x) {
				list = append(list, x)
			}
		}
	} else {
		list = slices.DeleteFunc(list, func(x string) bool { return slices.Contains(vals, x) })
	}
	return strings.Join(list, ",")
}

// configLookup resolves a config name of an alter request: its definition
// and the value in effect before the request, or why it cannot be altered.
type configLookup func(name string) (configDef, string, error)

// alterResource applies update to a topic's config overrides or to the
// dynamic broker configs; the shared part of IncrementalAlterConfigs and
// AlterConfigs.
func (b *Broker) alterResource(typ kmsg.ConfigResourceType, name string, validateOnly bool, update func(map[string]string, configLookup) (map[string]string, error)) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		err := b.setTopicConfig(name, update, validateOnly)
		if err == nil && !validateOnly {
			b.cfg.Logger.Info("broker: altered topic config", "topic", name)
		}
		return err
	case kmsg.ConfigResourceTypeBroker:
		if name != "" && name != strconv.Itoa(int(nodeID)) {
			return withMessage(kerr.InvalidRequest, "unknown broker "+strconv.Quote(name)+": Spool is node "+strconv.Itoa(int(nodeID)))
		}
		err := b.setBrokerConfig(name == "", update, validateOnly)
		if err == nil && !validateOnly {
			b.cfg.Logger.Info("broker: altered dynamic broker config", "resource", strconv.Quote(name))
		}
		return err
	default:
		return withMessage(kerr.InvalidRequest, "unsupported resource type "+typ.String())
	}
}
