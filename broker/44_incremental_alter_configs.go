package broker

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs: v0-1
//
// Behaviour:
//   - Topic resources: SET and DELETE (back to the default) of the topic
//     configs Spool supports. The resulting config is validated as a whole
//     (INVALID_CONFIG naming the config, nothing changed), then persisted
//     in the metadata file and applied to every partition log before the
//     response. APPEND and SUBTRACT: INVALID_CONFIG (the only list config,
//     cleanup.policy, has one allowed value). A config named twice in one
//     resource: INVALID_REQUEST. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//   - Broker resources are read-only: INVALID_REQUEST.
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
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(overrides map[string]string) (map[string]string, error) {
			seen := make(map[string]bool, len(rr.Configs))
			for _, c := range rr.Configs {
				if seen[c.Name] {
					return nil, withMessage(kerr.InvalidRequest, fmt.Sprintf("config %s is altered more than once", c.Name))
				}
				seen[c.Name] = true
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if c.Value == nil {
						return nil, fmt.Errorf("%w: config %s: SET needs a value", errInvalidConfig, c.Name)
					}
					overrides[c.Name] = *c.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					if _, ok := findConfigDef(c.Name); !ok {
						return nil, fmt.Errorf("%w: unknown or unsupported topic config %q", errInvalidConfig, c.Name)
					}
					delete(overrides, c.Name)
				default:
					return nil, fmt.Errorf("%w: config %s: operation %s is not supported", errInvalidConfig, c.Name, c.Op)
				}
			}
			return overrides, nil
		})
		sr.ErrorCode = b.errorCode(err)
		sr.ErrorMessage = errMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// alterResource applies update to a topic's config overrides; the shared
// part of IncrementalAlterConfigs and AlterConfigs.
func (b *Broker) alterResource(typ kmsg.ConfigResourceType, name string, validateOnly bool, update func(map[string]string) (map[string]string, error)) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		err := b.setTopicConfig(name, update, validateOnly)
		if err == nil && !validateOnly {
			b.cfg.Logger.Info("broker: altered topic config", "topic", name)
		}
		return err
	case kmsg.ConfigResourceTypeBroker:
		return withMessage(kerr.InvalidRequest, "broker configs are read-only: they come from `spool serve` flags (node "+strconv.Itoa(int(nodeID))+")")
	default:
		return withMessage(kerr.InvalidRequest, "unsupported resource type "+typ.String())
	}
}
