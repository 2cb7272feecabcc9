package broker_test

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// With ACLs, the authorized operations that Metadata, DescribeGroups and
// DescribeCluster report are those the requesting principal's ACLs allow,
// as Kafka computes them: implications (Read/Write/Alter imply Describe),
// All, DENY overriding ALLOW, PREFIXED patterns, and every supported
// operation for a super user. kadm decodes the bit fields.
func TestAuthorizedOperationsFollowACLs(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.Listeners = []broker.Listener{{Name: "SASL", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:0"}}
		c.SuperUsers = []string{"User:admin"}
	}))
	addr := srv.Broker().ListenerAddrs()["SASL"]
	ctx := testCtx(t)
	as := func(user string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha512Mechanism())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl, kadm.NewClient(cl)
	}
	if err := srv.Broker().SetUserPassword("admin", "SCRAM-SHA-512", "admin-pw"); err != nil {
		t.Fatal(err)
	}
	adminCl, adm := as("admin")
	for _, u := range []string{"alice", "bob"} {
		createUser(t, adm, u, u+"-pw", kadm.ScramSha512)
	}
	for _, tp := range []string{"orders", "pay.card", "pay.secret"} {
		createTopic(t, adm, tp, 1, nil)
	}
	b := kadm.NewACLs
	for _, acl := range []*kadm.ACLBuilder{
		b().Allow("User:alice").Topics("orders").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Allow("User:alice").Topics("pay.").Operations(kadm.OpWrite, kadm.OpDescribeConfigs).ResourcePatternType(kadm.ACLPatternPrefixed),
		b().Deny("User:alice").Topics("pay.secret").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Allow("User:alice").Groups("billing").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Allow("User:alice").Clusters().Operations(kadm.OpDescribe, kadm.OpIdempotentWrite),
		b().Allow("User:bob").Topics("orders").Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Deny("User:bob").Topics("orders").Operations(kadm.OpDelete).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Allow("User:bob").Groups("*").Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral),
	} {
		res, err := adm.CreateACLs(ctx, acl)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("CreateACLs: %v", r.Err)
			}
		}
	}
	// A group with a member, so DescribeGroups answers it Stable.
	produceSync(t, adminCl, &kgo.Record{Topic: "orders", Value: []byte("x")})
	member, _ := as("alice", kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if fs := member.PollFetches(ctx); fs.Err() != nil || len(fs.Records()) != 1 {
		t.Fatalf("alice consuming in billing: %v", fs.Err())
	}

	const (
		read, write, create, del, alter, describe = kadm.OpRead, kadm.OpWrite, kadm.OpCreate, kadm.OpDelete, kadm.OpAlter, kadm.OpDescribe
		describeConfigs, alterConfigs, idem       = kadm.OpDescribeConfigs, kadm.OpAlterConfigs, kadm.OpIdempotentWrite
		clusterAction                             = kadm.OpClusterAction
	)
	allTopic := []kadm.ACLOperation{read, write, create, del, alter, describe, describeConfigs, alterConfigs}
	check := func(what string, got, want []kadm.ACLOperation) {
		t.Helper()
		got, want = slices.Clone(got), slices.Clone(want)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: authorized operations %v, want %v", what, got, want)
		}
	}
	topicOps := func(adm *kadm.Client, who string, want map[string][]kadm.ACLOperation) {
		t.Helper()
		var topics []string
		for topic := range want {
			topics = append(topics, topic)
		}
		md, err := adm.Metadata(kadm.WithAuthorizedOps(ctx), topics...)
		if err != nil {
			t.Fatalf("%s: Metadata: %v", who, err)
		}
		for topic, ops := range want {
			check(who+" on topic "+topic, md.Topics[topic].AuthorizedOperations, ops)
		}
	}
	_, aliceAdm := as("alice")
	_, bobAdm := as("bob")
	topicOps(aliceAdm, "alice", map[string][]kadm.ACLOperation{
		"orders":     {read, describe},
		"pay.card":   {write, describe, describeConfigs},
		"pay.secret": {describe, describeConfigs}, // the DENY of Write wins over the prefixed ALLOW
	})
	topicOps(bobAdm, "bob", map[string][]kadm.ACLOperation{
		"orders": {read, write, create, alter, describe, describeConfigs, alterConfigs}, // All but the denied Delete
	})
	topicOps(adm, "admin (super user)", map[string][]kadm.ACLOperation{"orders": allTopic, "pay.secret": allTopic})

	groupOps := func(adm *kadm.Client, who string, want []kadm.ACLOperation) {
		t.Helper()
		gs, err := adm.DescribeGroups(ctx, "billing")
		if err != nil {
			t.Fatalf("%s: DescribeGroups: %v", who, err)
		}
		g := gs["billing"]
		if g.Err != nil {
			t.Fatalf("%s: DescribeGroups billing: %v", who, g.Err)
		}
		check(who+" on group billing", g.AuthorizedOperations, want)
	}
	groupOps(aliceAdm, "alice", []kadm.ACLOperation{read, describe})
	groupOps(bobAdm, "bob", []kadm.ACLOperation{describe})
	groupOps(adm, "admin", []kadm.ACLOperation{read, describe, del})

	clusterOps := func(who string, want []kadm.ACLOperation) {
		t.Helper()
		cl, _ := as(who)
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeClusterAuthorizedOperations = true
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("%s: DescribeCluster: %v (code %d)", who, err, resp.ErrorCode)
		}
		check(who+" on the cluster", kadm.DecodeACLOperations(resp.ClusterAuthorizedOperations), want)
		// Metadata v10 (Kafka 2.7), the last version with the cluster's
		// operations.
		old, _ := as(who, kgo.MaxVersions(kversion.V2_7_0()))
		md := kmsg.NewPtrMetadataRequest()
		md.IncludeClusterAuthorizedOperations = true
		md.Topics = []kmsg.MetadataRequestTopic{}
		mr, err := md.RequestWith(ctx, old)
		if err != nil {
			t.Fatalf("%s: Metadata v10: %v", who, err)
		}
		check(who+" on the cluster (Metadata v10)", kadm.DecodeACLOperations(mr.AuthorizedOperations), want)
	}
	clusterOps("alice", []kadm.ACLOperation{describe, idem})
	clusterOps("admin", []kadm.ACLOperation{create, clusterAction, describeConfigs, alterConfigs, idem, alter, describe})

	// Not asked: Kafka's "not requested", whoever asks.
	alice, _ := as("alice")
	req := kmsg.NewPtrDescribeClusterRequest()
	if resp, err := req.RequestWith(ctx, alice); err != nil || resp.ClusterAuthorizedOperations != -2147483648 {
		t.Errorf("DescribeCluster not asked: %d %v", resp.ClusterAuthorizedOperations, err)
	}
}
