package broker_test

import (
	"sync"
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
	srv := spooltest.Start(t)
	adm, admCl := newAdmin(t, srv)
	createTopic(t, adm, "sd", 1, nil)
	// No other client may have a request in flight when Close starts:
	// only this fetch, which the wait below sees being handled.
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
	fetching := make(chan struct{})
	var once sync.Once
	broker.SetTestHooks(srv.Broker(), func(key int16) {
		if key == int16(kmsg.Fetch) {
			once.Do(func() { close(fetching) })
		}
	}, nil)
	corr := rc.send(req)
	// Wait until the fetch was read and its handler runs (the broker's
	// signal, not a sleep of a guessed length).
	select {
	case <-fetching:
	case <-time.After(testTimeout):
		t.Fatal("the fetch's handler never started")
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
