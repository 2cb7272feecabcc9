package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/httpapi"
	"github.com/spoolmq/spool/internal/kafkatest"
)

func TestKafkaErrorStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{kerr.UnknownMemberID, http.StatusConflict},
		{kerr.NonEmptyGroup, http.StatusConflict},
		{kerr.GroupSubscribedToTopic, http.StatusConflict},
		{kerr.GroupIDNotFound, http.StatusNotFound},
		{kerr.GroupAuthorizationFailed, http.StatusForbidden},
		{&kadm.AuthError{Err: kerr.TopicAuthorizationFailed}, http.StatusForbidden},
		{kerr.UnknownTopicOrPartition, http.StatusBadRequest},
		{fmt.Errorf("wrapped: %w", kerr.RebalanceInProgress), http.StatusConflict},
		{errors.New("connection refused"), http.StatusBadGateway},
	} {
		var he *httpapi.Error
		if !errors.As(kafkaError("group g", c.err), &he) || he.Status != c.want {
			t.Errorf("%v: %+v, want %d", c.err, he, c.want)
		}
	}
}

// TestApplyResetBrokerRefusal: when a consumer joins between the console's
// state check and its commit, the broker's refusal is a 409 too.
func TestApplyResetBrokerRefusal(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "race", 1)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup("race-g"), kgo.ConsumeTopics("race"),
			kgo.SessionTimeout(kafkatest.SessionTimeout(addrs)), kgo.HeartbeatInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				cl.PollFetches(ctx)
			}
		}()
		defer func() { cancel(); <-done; cl.Close() }()
		adm := kadm.NewClient(cl)
		kafkatest.Eventually(t, 30*time.Second, "race-g stable", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ds, err := adm.DescribeGroups(ctx, "race-g")
			return err == nil && ds["race-g"].State == "Stable"
		})
		actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer acancel()
		err = applyReset(actx, adm, "race-g", []planRow{{Topic: "race", Partition: 0, New: 0}})
		var he *httpapi.Error
		if !errors.As(err, &he) || he.Status != http.StatusConflict || !errors.Is(err, kerr.UnknownMemberID) {
			t.Fatalf("commit to a group with members: %v, want 409 UNKNOWN_MEMBER_ID", err)
		}
	})
}
