package broker

import "github.com/twmb/franz-go/pkg/kmsg"

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
	return b.producers.InitProducerID(r.kreq.(*kmsg.InitProducerIDRequest)), nil
}
