package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs: v0-2
//
// Behaviour:
//   - The legacy, non-incremental form: the given configs replace all of a
//     topic's overrides (configs not listed return to their defaults).
//     Validation, persistence and errors as IncrementalAlterConfigs.
//   - Broker resources ("0" or ""): the given configs replace all dynamic
//     broker configs of that resource, checked as IncrementalAlterConfigs
//     checks them.
//
// Version notes:
//   - v1: ThrottleMillis semantics; v2: flexible

func (b *Broker) handleAlterConfigs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(_ map[string]string, lookup configLookup) (map[string]string, error) {
			overrides := make(map[string]string, len(rr.Configs))
			for _, c := range rr.Configs {
				if _, _, err := lookup(c.Name); err != nil {
					return nil, fmt.Errorf("%w: %v", errInvalidConfig, err)
				}
				if c.Value == nil {
					return nil, fmt.Errorf("%w: config %s: null value", errInvalidConfig, c.Name)
				}
				overrides[c.Name] = *c.Value
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
