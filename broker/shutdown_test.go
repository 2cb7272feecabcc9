package broker_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// Close answers the requests in flight (a long-poll fetch returns at once
// with what there is) before it closes the connection and the storage.
func TestCloseAnswersInFlightLongPoll(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.Registerer = reg }))
	adm, admCl := newAdmin(t, srv)
	createTopic(t, adm, "sd", 1, nil)
	// No other client may have a request in flight: the wait below must
	// see this fetch, not another connection's request (with the fetch
	// still unread, Close would reset the connection).
	admCl.Close()
	rc := dialRaw(t, srv.Addr())
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxWaitMillis = int32(10 * testTimeout / time.Millisecond) // far beyond the test's bound
	req.MinBytes, req.MaxBytes, req.SessionEpoch = 1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "sd"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	before := metricSum(t, reg, "spool_broker_request_bytes_total")
	frame := len(rc.f.AppendRequest(nil, req, rc.corr+1)) // counted with its size prefix
	corr := rc.send(req)
	// Wait until the fetch was read and is being handled (a condition
	// polled with a deadline, not a sleep of a guessed length).
	deadline := time.Now().Add(testTimeout)
	for metricSum(t, reg, "spool_broker_request_bytes_total") < before+float64(frame) || inFlight(t, reg) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the fetch never became in flight")
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	rc.recv(corr, resp)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Fatalf("fetch answered at shutdown: error %s, %d bytes, hw %d", errName(p.ErrorCode), len(p.RecordBatches), p.HighWatermark)
	}
	rc.expectClosed()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close did not return")
	}
}

// metricSum returns the sum of the counter or gauge samples of name.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func inFlight(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "spool_broker_requests_in_flight" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no spool_broker_requests_in_flight metric")
	return 0
}
