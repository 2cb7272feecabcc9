package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-4
//
// Behaviour:
//   - Lists every key of apiTable with its version range.
//   - A version above 4 is answered as Kafka does (KIP-511): a v0 response
//     with UNSUPPORTED_VERSION and only ApiVersions' own range, so the
//     client retries at a version we serve. The request body is not parsed.
//   - No feature flags (KIP-584): Spool has no finalized features.
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: flexible; ClientSoftwareName/Version (accepted, not checked)
//   - the response header is always v0, even for flexible versions

func (b *Broker) handleApiVersions(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	for _, a := range b.served() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp, nil
}

// unsupportedApiVersions answers an ApiVersions request whose version we do
// not serve.
func unsupportedApiVersions(r *request) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = 18, r.api.min, r.api.max
	resp.ApiKeys = append(resp.ApiKeys, k)
	return resp
}
