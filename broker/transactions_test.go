package broker_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/spooltest"
)

// Until Spool has transactions, every transactional request gets
// UNSUPPORTED_VERSION with a message: clients report "unsupported", not an
// authorization failure (Produce answered TRANSACTIONAL_ID_AUTHORIZATION_FAILED
// before), and do not retry forever (FindCoordinator answered the retriable
// COORDINATOR_NOT_AVAILABLE before).
func TestTransactionalRequestsUnsupported(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "t", 1, nil)
	rc := dialRaw(t, srv.Addr())

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version, ip.TransactionalID = 4, kmsg.StringPtr("tx")
	if r := rc.roundTrip(ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("InitProducerId with a transactional ID: %s", errName(r.ErrorCode))
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorType, fc.CoordinatorKey = 3, 1, "tx"
	if r := rc.roundTrip(fc).(*kmsg.FindCoordinatorResponse); r.ErrorCode != kerr.UnsupportedVersion.Code || r.ErrorMessage == nil {
		t.Errorf("FindCoordinator for a transaction: %s, message %v", errName(r.ErrorCode), r.ErrorMessage)
	}
	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis, pr.TransactionID = 9, -1, 1000, kmsg.StringPtr("tx")
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = makeBatch(1, "a")
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	if p := rc.roundTrip(pr).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnsupportedVersion.Code || p.ErrorMessage == nil {
		t.Errorf("transactional Produce: %s, message %v", errName(p.ErrorCode), p.ErrorMessage)
	}

	// franz-go's transactional producer fails with UNSUPPORTED_VERSION.
	cl := newClient(t, srv, kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("t"))
	err := cl.BeginTransaction()
	if err == nil {
		err = cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("v")}).FirstErr()
	}
	if !errors.Is(err, kerr.UnsupportedVersion) {
		t.Fatalf("franz-go transactional produce: %v, want UNSUPPORTED_VERSION", err)
	}
}
