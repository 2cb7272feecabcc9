package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// __consumer_offsets exists as an internal topic once a group coordinator
// was looked up, as in Kafka: Metadata marks it IsInternal, so admin
// listings and regex subscriptions leave it out; clients cannot produce to
// it or delete it. (franz-go's own TestConsumeRegex waits for exactly this.)
func TestConsumerOffsetsIsInternal(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	ctx := testCtx(t)
	createTopic(t, adm, "regex-a", 1, nil)
	produceSync(t, cl, &kgo.Record{Topic: "regex-a", Value: []byte("a")})

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	if resp := dialRaw(t, srv.Addr()).roundTrip(fc).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != 0 {
		t.Fatalf("FindCoordinator: %s", errName(resp.ErrorCode))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	resp := dialRaw(t, srv.Addr()).roundTrip(md).(*kmsg.MetadataResponse)
	internal := map[string]bool{}
	for _, tp := range resp.Topics {
		internal[*tp.Topic] = tp.IsInternal
	}
	if v, ok := internal["__consumer_offsets"]; !ok || !v {
		t.Fatalf("__consumer_offsets in Metadata: present %v internal %v (%v)", ok, v, internal)
	}
	if internal["regex-a"] {
		t.Fatal("regex-a reported internal")
	}
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listed.Has("__consumer_offsets") || !listed.Has("regex-a") {
		t.Fatalf("ListTopics (internal excluded): %v", listed.Names())
	}

	rc := dialRaw(t, srv.Addr())
	if sp := produceRaw(t, rc, "__consumer_offsets", 0, makeBatch(1, "x")); sp.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to __consumer_offsets: %s, want INVALID_TOPIC_EXCEPTION", errName(sp.ErrorCode))
	}
	if r, err := adm.DeleteTopics(ctx, "__consumer_offsets"); err != nil || r["__consumer_offsets"].Err != kerr.InvalidTopicException {
		t.Fatalf("delete __consumer_offsets: %v %v", err, r)
	}

	// A regex subscription matching everything consumes regex-a only.
	consumer := newClient(t, srv, kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := consumer.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range fs.Records() {
		if r.Topic != "regex-a" {
			t.Fatalf("regex consumer got a record of %s", r.Topic)
		}
	}
	waitFor(t, "the regex subscription to settle on regex-a", func() bool {
		topics := consumer.GetConsumeTopics()
		return len(topics) == 1 && topics[0] == "regex-a"
	})
}

// Asked for authorized operations, Metadata, DescribeGroups and
// DescribeCluster report every operation of the resource type, as Kafka
// without an authorizer does; not asked, Kafka's "not requested".
func TestAuthorizedOperations(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	ctx := testCtx(t)
	createTopic(t, adm, "ops", 1, nil)
	produceSync(t, cl, &kgo.Record{Topic: "ops", Value: []byte("x")})
	c := newClient(t, srv, kgo.ConsumerGroup("ops-group"), kgo.ConsumeTopics("ops"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	c.PollFetches(ctx) // joined the group once it has the record

	const notRequested = -2147483648
	bits := func(ops ...kmsg.ACLOperation) int32 {
		var b int32
		for _, o := range ops {
			b |= 1 << o
		}
		return b
	}
	topicAll := bits(kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs)
	groupAll := bits(kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete)
	clusterAll := bits(kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe)

	for _, asked := range []bool{true, false} {
		want := func(all int32) int32 {
			if asked {
				return all
			}
			return notRequested
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 10
		md.IncludeClusterAuthorizedOperations, md.IncludeTopicAuthorizedOperations = asked, asked
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("ops")
		md.Topics = append(md.Topics, mt)
		mr := dialRaw(t, srv.Addr()).roundTrip(md).(*kmsg.MetadataResponse)
		if mr.AuthorizedOperations != want(clusterAll) || mr.Topics[0].AuthorizedOperations != want(topicAll) {
			t.Errorf("asked %v: Metadata cluster ops %d topic ops %d", asked, mr.AuthorizedOperations, mr.Topics[0].AuthorizedOperations)
		}
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Version = 5
		dg.Groups, dg.IncludeAuthorizedOperations = []string{"ops-group"}, asked
		if gr := dialRaw(t, srv.Addr()).roundTrip(dg).(*kmsg.DescribeGroupsResponse); gr.Groups[0].AuthorizedOperations != want(groupAll) {
			t.Errorf("asked %v: DescribeGroups ops %d", asked, gr.Groups[0].AuthorizedOperations)
		}
		dc := kmsg.NewPtrDescribeClusterRequest()
		dc.IncludeClusterAuthorizedOperations = asked
		if cr := dialRaw(t, srv.Addr()).roundTrip(dc).(*kmsg.DescribeClusterResponse); cr.ClusterAuthorizedOperations != want(clusterAll) {
			t.Errorf("asked %v: DescribeCluster ops %d", asked, cr.ClusterAuthorizedOperations)
		}
	}
	// kadm decodes the bit field into operations.
	groups, err := adm.DescribeGroups(ctx, "ops-group")
	if err != nil {
		t.Fatal(err)
	}
	if g := groups["ops-group"]; len(g.AuthorizedOperations) != 3 {
		t.Errorf("kadm group operations: %v", g.AuthorizedOperations)
	}
}

// assignCounter counts a consumer's assign and revoke callbacks.
type assignCounter struct {
	mu               sync.Mutex
	assigns, revokes int
	owned            int
}

func (a *assignCounter) opts() []kgo.Opt {
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.assigns++
			for _, ps := range m {
				a.owned += len(ps)
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, ps := range m {
				if len(ps) > 0 {
					a.revokes++
				}
				a.owned -= len(ps)
			}
		}),
	}
}

func (a *assignCounter) get() (assigns, revokes, owned int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.assigns, a.revokes, a.owned
}

// group.initial.rebalance.delay.ms: consumers that subscribe shortly after
// one another share the first generation, so each is assigned once and
// nothing is revoked (librdkafka's 0113, cooperative-sticky, expects one
// assign call; 0102 expects no revoke for static members). Without the
// delay the first consumer took every partition and a second rebalance
// revoked half of them.
func TestInitialRebalanceDelay(t *testing.T) {
	for _, static := range []bool{false, true} {
		name := map[bool]string{false: "cooperative-sticky", true: "static"}[static]
		t.Run(name, func(t *testing.T) {
			srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.GroupInitialRebalanceDelay = time.Second }))
			adm, _ := newAdmin(t, srv)
			ctx := testCtx(t)
			createTopic(t, adm, "delayed", 4, nil)
			group := "delay-" + name
			start := func(i int) *assignCounter {
				a := &assignCounter{}
				opts := append(a.opts(), kgo.ConsumerGroup(group), kgo.ConsumeTopics("delayed"), kgo.SessionTimeout(6*time.Second))
				if static {
					opts = append(opts, kgo.InstanceID("member-"+string(rune('a'+i))))
				}
				cl := newClient(t, srv, opts...)
				go func() {
					for !cl.PollFetches(ctx).IsClientClosed() && ctx.Err() == nil {
					}
				}()
				return a
			}
			first := start(0)
			// The second subscribes once the first is in the group.
			waitFor(t, "the first member to join", func() bool {
				gs, err := adm.DescribeGroups(ctx, group)
				return err == nil && len(gs[group].Members) == 1
			})
			second := start(1)
			waitFor(t, "both members to own two partitions", func() bool {
				_, _, o1 := first.get()
				_, _, o2 := second.get()
				return o1 == 2 && o2 == 2
			})
			gs, err := adm.DescribeGroups(ctx, group)
			if err != nil || gs[group].State != "Stable" {
				t.Fatalf("group: %v %+v", err, gs[group])
			}
			for i, a := range []*assignCounter{first, second} {
				if assigns, revokes, _ := a.get(); assigns != 1 || revokes != 0 {
					t.Errorf("member %d: %d assign calls, %d revokes; want 1 and 0 (one shared first generation)", i, assigns, revokes)
				}
			}
		})
	}
}
