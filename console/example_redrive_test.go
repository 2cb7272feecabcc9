package console_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/console"
)

// Redrive dead letters from Go: a dry run, then the redrive of exactly
// what it counted, against any Kafka cluster (here franz-go's kfake).
func ExampleRedrive() {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", "orders.dlq"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Three dead letters as the agent writes them, two of them timeouts.
	cl, _ := kgo.NewClient(opts...)
	for i, cause := range []string{"timeout", "bad input", "timeout"} {
		src := &kgo.Record{Topic: "orders", Offset: int64(i), Key: []byte("order-1"), Value: []byte(fmt.Sprint("v", i))}
		dl := agent.DeadLetterRecord("orders.dlq", src, "billing", agent.ReasonRetriesExhausted, 5, errors.New(cause), time.Now())
		if err := cl.ProduceSync(ctx, dl).FirstErr(); err != nil {
			panic(err)
		}
	}
	cl.Close()

	spec := console.RedriveSpec{DLQ: "orders.dlq", Select: console.Selection{ErrorContains: "timeout"}}
	plan, err := console.PlanRedrive(ctx, opts, spec)
	if err != nil {
		panic(err)
	}
	fmt.Printf("dry run: %d of %d records to %v\n", plan.Redrive, plan.Scanned, plan.ByTarget)

	spec.Through = plan.Through // exactly what the dry run counted
	rep, err := console.Redrive(ctx, opts, spec, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("redriven %d, failed %d, skipped %d\n", rep.Redriven, rep.Failed, rep.Skipped)

	plan, _ = console.PlanRedrive(ctx, opts, spec)
	fmt.Printf("again: %d to redrive, %d already redriven\n", plan.Redrive, plan.AlreadyRedriven)
	// Output:
	// dry run: 2 of 3 records to map[orders:2]
	// redriven 2, failed 0, skipped 0
	// again: 0 to redrive, 2 already redriven
}
