package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: v0-4
//
// Behaviour (package producers): an idempotent producer gets a new producer
// ID, unique across restarts, with epoch 0; Produce then checks its
// sequence numbers per partition (see producers.Manager.Append).
// Transactions are not supported: a transactional ID gets
// UNSUPPORTED_VERSION, which clients report as unsupported (not as an
// authorization failure, nor retriable).
//
// Version notes:
//   - v3: the producer's current ID and epoch (KIP-360): a non-transactional
//     producer gets a fresh ID, as from Kafka.
func (b *Broker) handleInitProducerID(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	if req.TransactionalID == nil && !b.allowedIdempotentWrite(r) {
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = kerr.ClusterAuthorizationFailed.Code, -1, -1
		return resp, nil
	}
	return b.producers.InitProducerID(req), nil
}

// allowedIdempotentWrite: IdempotentWrite on the cluster, or (KIP-679)
// Write on any topic, as Kafka 3 allows an idempotent producer.
func (b *Broker) allowedIdempotentWrite(r *request) bool {
	if r.allowedQuiet(resCluster, clusterName, opIdempotentWrite) {
		return true
	}
	for _, t := range b.topics().sorted() {
		if r.allowedQuiet(resTopic, t.name, opWrite) {
			return true
		}
	}
	return r.allowed(resCluster, clusterName, opIdempotentWrite) // logs the refusal
}
