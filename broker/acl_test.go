package broker_test

import (
	"errors"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// TestACLs drives Kafka's ACL model through the admin APIs with kadm, as
// Kafka's own tools would, and checks each decision as clients see it:
// allowed and refused operations on topics and groups, PREFIXED patterns,
// deny overriding allow, super users, Metadata hiding what a principal
// may not describe, the log line naming the missing grant, and the ACLs
// surviving a restart.
func TestACLs(t *testing.T) {
	logs := &logBuffer{}
	srv := spooltest.Start(t, spooltest.WithLogger(slog.New(slog.NewTextHandler(logs, nil))), spooltest.WithConfig(func(c *broker.Config) {
		c.Listeners = []broker.Listener{{Name: "SASL", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:0"}}
		c.SuperUsers = []string{"User:admin"}
	}))
	addr := srv.Broker().ListenerAddrs()["SASL"]
	as := func(user string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha512Mechanism())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl, kadm.NewClient(cl)
	}
	// The first user is created in the broker's store directly (what
	// `spool user create --data DIR` does); everything else through the
	// admin APIs.
	if err := srv.Broker().SetUserPassword("admin", "SCRAM-SHA-512", "admin-pw"); err != nil {
		t.Fatal(err)
	}
	adminCl, adm := as("admin")
	for _, u := range []string{"alice", "bob"} {
		createUser(t, adm, u, u+"-pw", kadm.ScramSha512)
	}
	for _, tp := range []string{"orders", "pay.card", "pay.secret", "other"} {
		createTopic(t, adm, tp, 1, nil)
	}
	alice, aliceAdm := as("alice")
	if err := alice.ProduceSync(testCtx(t), &kgo.Record{Topic: "other", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("before any ACL alice may write: %v", err)
	}

	b := kadm.NewACLs
	for _, acl := range []*kadm.ACLBuilder{
		b().Allow("User:alice").Topics("orders").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Allow("User:alice").Topics("pay.").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternPrefixed),
		b().Deny("User:alice").Topics("pay.secret").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Allow("User:alice").Groups("billing").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral),
	} {
		res, err := adm.CreateACLs(testCtx(t), acl)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("CreateACLs: %v", r.Err)
			}
		}
	}

	// Metadata shows alice only what she may describe (Read and Write
	// imply Describe).
	md, err := aliceAdm.ListTopics(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := md.Names()
	sort.Strings(got)
	if strings.Join(got, ",") != "orders,pay.card,pay.secret" {
		t.Errorf("alice's topics: %v", got)
	}
	_, bobAdm := as("bob")
	if md, err := bobAdm.ListTopics(testCtx(t)); err != nil || len(md.Names()) != 0 {
		t.Errorf("bob's topics: %v %v", md.Names(), err)
	}

	produce := func(cl *kgo.Client, topic string) error {
		return cl.ProduceSync(testCtx(t), &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
	}
	if err := produce(alice, "pay.card"); err != nil {
		t.Errorf("prefixed Write: %v", err)
	}
	if err := produce(alice, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce without Write: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := produce(alice, "pay.secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("deny overriding the prefixed allow: %v", err)
	}
	if !strings.Contains(logs.String(), "spool acl add --allow User:alice --operation WRITE --topic orders") {
		t.Errorf("the refusal log line does not name the missing grant:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "denied by ACL") {
		t.Errorf("the refusal log line does not name the DENY")
	}

	// Consuming with group billing works and commits; another group is
	// refused.
	consumer, _ := as("alice", kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err := produce(adminCl, "orders"); err != nil {
		t.Fatal(err)
	}
	fs := consumer.PollFetches(testCtx(t))
	if err := fs.Err(); err != nil || len(fs.Records()) != 1 {
		t.Fatalf("alice consuming orders in billing: %v %d", err, len(fs.Records()))
	}
	if err := consumer.CommitUncommittedOffsets(testCtx(t)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if _, err := aliceAdm.FetchOffsets(testCtx(t), "search"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Errorf("offsets of a group without ACLs: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}

	// Admin operations.
	if res, _ := aliceAdm.CreateTopics(testCtx(t), 1, 1, nil, "new-topic"); !errors.Is(res["new-topic"].Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice creating a topic: %v", res["new-topic"].Err)
	}
	if res, _ := aliceAdm.DeleteTopics(testCtx(t), "orders"); !errors.Is(res["orders"].Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice deleting a topic: %v", res["orders"].Err)
	}
	res, err := aliceAdm.CreateACLs(testCtx(t), b().Allow("User:alice").Topics("other").Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternLiteral))
	if err == nil && (len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed)) {
		t.Errorf("alice granting herself: %v", res)
	}
	described, err := adm.DescribeACLs(testCtx(t), b().Allow("User:alice").AllowHosts().Deny("User:alice").DenyHosts().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil || len(described) != 2 || len(described[0].Described) != 3 || len(described[1].Described) != 1 {
		t.Fatalf("DescribeACLs: %+v %v", described, err)
	}

	// The ACLs survive a restart; deleting the deny lets alice write.
	srv.Restart(t)
	addr = srv.Broker().ListenerAddrs()["SASL"]
	alice, _ = as("alice")
	if err := produce(alice, "pay.secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("after restart the deny is gone: %v", err)
	}
	_, adm = as("admin")
	del, err := adm.DeleteACLs(testCtx(t), b().Deny("User:alice").DenyHosts().Topics("pay.secret").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(del) != 1 || len(del[0].Deleted) != 1 {
		t.Fatalf("DeleteACLs: %+v %v", del, err)
	}
	if err := produce(alice, "pay.secret"); err != nil {
		t.Fatalf("after deleting the deny: %v", err)
	}
}
