package spooltest_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

func TestStartRestartKeepsData(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithPartitions(2), spooltest.WithConfig(func(c *broker.Config) { c.MaxMessageBytes = 4096 }))
	if got := srv.Broker().Config().MaxMessageBytes; got != 4096 {
		t.Fatalf("WithConfig not applied: MaxMessageBytes %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	addr := srv.Addr()
	srv.Restart(t)
	if srv.Addr() != addr {
		t.Logf("restarted on %s (port of %s was taken)", srv.Addr(), addr)
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(srv.Addr()), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil || len(fs.Records()) != 1 || string(fs.Records()[0].Value) != "before" {
		t.Fatalf("after restart: %v %v", err, fs.Records())
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
