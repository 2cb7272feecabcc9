package agent_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/event"
	"github.com/spoolmq/spool/producer"
)

// A handler returns a verdict; the agent retries, dead-letters or stops.
// Here the second payment of a customer fails once and is retried, holding
// back that customer's third payment until it succeeds, and an invalid
// payment is dead-lettered.
func Example() {
	cluster, _ := kfake.NewCluster(kfake.AllowAutoTopicCreation(), kfake.SeedTopics(1, "payments"))
	defer cluster.Close()
	ctx, cancel := context.WithCancel(context.Background())

	p, _ := producer.New(producer.WithBrokers(cluster.ListenAddrs()...), producer.WithSource("/billing"))
	for _, amount := range []string{"10", "20", "-5", "30"} {
		ev, _ := event.New("payment.received", event.Raw, amount)
		ev.Key = []byte("customer-1")
		p.Publish(ctx, "payments", ev)
	}
	p.Close()

	failedOnce := false
	handled := 0
	a, _ := agent.New("ledger", []string{"payments"},
		agent.WithBrokers(cluster.ListenAddrs()...),
		agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		agent.WithHandler("payment.received", func(ctx context.Context, m *agent.Message) error {
			amount := string(m.Data)
			switch {
			case amount == "-5":
				fmt.Println("dead-letter", amount)
				handled++
				return agent.DeadLetter(errors.New("negative amount"))
			case amount == "20" && !failedOnce:
				failedOnce = true
				fmt.Println("retry", amount)
				return agent.Retry(errors.New("database busy"))
			}
			fmt.Println("booked", amount, "attempt", m.Attempt)
			if handled++; handled == 4 {
				cancel()
			}
			return nil
		}))
	if err := a.Run(ctx); err != nil {
		fmt.Println(err)
	}
	s := a.Stats()
	fmt.Println("succeeded", s.Succeeded, "retried", s.Retried, "dead-lettered", s.DeadLettered)
	// Output:
	// booked 10 attempt 1
	// retry 20
	// booked 20 attempt 2
	// dead-letter -5
	// booked 30 attempt 1
	// succeeded 3 retried 1 dead-lettered 1
}

// With WithRetryTopic a long retry is parked in a retry topic instead of
// memory: the payments partition moves on (another customer's payment is
// booked meanwhile), and customer-1's next payment follows the parked one
// through the retry topic, so that customer's payments stay in order.
func ExampleWithRetryTopic() {
	cluster, _ := kfake.NewCluster(kfake.SeedTopics(1, "payments"))
	defer cluster.Close()
	ctx, cancel := context.WithCancel(context.Background())

	p, _ := producer.New(producer.WithBrokers(cluster.ListenAddrs()...), producer.WithSource("/billing"))
	for _, pay := range [][2]string{{"customer-1", "10"}, {"customer-1", "20"}, {"customer-2", "5"}} {
		ev, _ := event.New("payment.received", event.Raw, pay[1])
		ev.Key = []byte(pay[0])
		p.Publish(ctx, "payments", ev)
	}
	p.Close()

	handled := 0
	a, _ := agent.New("ledger", []string{"payments"},
		agent.WithBrokers(cluster.ListenAddrs()...),
		agent.WithClientOptions(kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())),
		agent.WithConcurrency(1),
		agent.WithRetryTopic(50*time.Millisecond),
		agent.WithHandler("payment.received", func(ctx context.Context, m *agent.Message) error {
			if string(m.Data) == "10" && m.Attempt == 1 {
				fmt.Println("bank offline: retry 10 in 100ms")
				return agent.RetryAfter(100*time.Millisecond, errors.New("bank offline"))
			}
			fmt.Printf("booked %s for %s from %s\n", m.Data, m.Key, m.Record.Topic)
			if handled++; handled == 3 {
				cancel()
			}
			return nil
		}))
	if err := a.Run(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("deferred", a.Stats().Deferred)
	// Output:
	// bank offline: retry 10 in 100ms
	// booked 5 for customer-2 from payments
	// booked 10 for customer-1 from payments.ledger.retry
	// booked 20 for customer-1 from payments.ledger.retry
	// deferred 1
}
