package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topicT   = kmsg.ACLResourceTypeTopic
	groupT   = kmsg.ACLResourceTypeGroup
	clusterT = kmsg.ACLResourceTypeCluster
	literal  = kmsg.ACLResourcePatternTypeLiteral
	prefixed = kmsg.ACLResourcePatternTypePrefixed
	allow    = kmsg.ACLPermissionTypeAllow
	deny     = kmsg.ACLPermissionTypeDeny
	read     = kmsg.ACLOperationRead
	write    = kmsg.ACLOperationWrite
	describe = kmsg.ACLOperationDescribe
)

func acl(p Principal, rt ResourceType, name string, pt PatternType, op Operation, perm Permission) ACL {
	return ACL{Principal: p, Host: "*", ResourceType: rt, ResourceName: name, PatternType: pt, Operation: op, Permission: perm}
}

func TestAuthorize(t *testing.T) {
	alice, bob, admin := User("alice"), User("bob"), User("admin")
	z, err := NewAuthorizer([]ACL{
		acl(alice, topicT, "orders", literal, read, allow),
		acl(alice, topicT, "pay.", prefixed, write, allow),
		acl(alice, topicT, "pay.secret", literal, write, deny),
		acl(AnyUser, topicT, "public", literal, kmsg.ACLOperationAll, allow),
		acl(bob, topicT, "*", literal, read, allow),
		acl(bob, topicT, "private.", prefixed, kmsg.ACLOperationAll, deny),
		acl(alice, groupT, "billing", literal, read, allow),
		acl(alice, topicT, "cfg", literal, kmsg.ACLOperationAlterConfigs, allow),
		{Principal: bob, Host: "10.0.0.1", ResourceType: topicT, ResourceName: "hosted", PatternType: literal, Operation: write, Permission: allow},
	}, []Principal{admin}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    Principal
		host string
		rt   ResourceType
		name string
		op   Operation
		want bool
	}{
		{alice, "h", topicT, "orders", read, true},
		{alice, "h", topicT, "orders", write, false},                  // only read granted
		{alice, "h", topicT, "orders", describe, true},                // read implies describe
		{alice, "h", topicT, "orders2", read, false},                  // literal is exact
		{alice, "h", topicT, "pay.card", write, true},                 // prefixed
		{alice, "h", topicT, "pay", write, false},                     // shorter than the prefix
		{alice, "h", topicT, "pay.secret", write, false},              // deny overrides allow
		{alice, "h", topicT, "pay.secret", describe, true},            // deny of write does not deny describe
		{alice, "h", topicT, "public", kmsg.ACLOperationDelete, true}, // All, for every user
		{bob, "h", topicT, "anything", read, true},                    // wildcard name
		{bob, "h", topicT, "private.x", read, false},                  // deny All overrides the wildcard allow
		{bob, "h", groupT, "billing", read, false},                    // other resource type
		{alice, "h", groupT, "billing", read, true},
		{alice, "h", topicT, "cfg", kmsg.ACLOperationDescribeConfigs, true}, // AlterConfigs implies DescribeConfigs
		{alice, "h", topicT, "cfg", kmsg.ACLOperationAlter, false},
		{bob, "10.0.0.1", topicT, "hosted", write, true}, // host matches
		{bob, "10.0.0.2", topicT, "hosted", write, false},
		{admin, "h", clusterT, "kafka-cluster", kmsg.ACLOperationAlter, true}, // super user
		{User("carol"), "h", topicT, "orders", read, false},                   // nothing matches
	} {
		if got := z.Authorize(c.p, c.host, c.rt, c.name, c.op); got != c.want {
			t.Errorf("%s from %s %s on %s:%s = %v, want %v", c.p, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
	if got := z.Explain(alice, "h", topicT, "pay.secret", write); !strings.Contains(got, "denied by ACL") {
		t.Errorf("Explain of a deny: %q", got)
	}
	if got := z.Explain(alice, "h", topicT, "orders", write); !strings.Contains(got, "--allow User:alice --operation WRITE --topic orders") {
		t.Errorf("Explain of a missing grant: %q", got)
	}
}

func TestAuthorizerOffUntilFirstACL(t *testing.T) {
	z, err := NewAuthorizer(nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if z.Enabled() || !z.Authorize(User("x"), "h", topicT, "t", write) {
		t.Fatal("an authorizer without ACLs refused")
	}
	if err := z.Add(nil, acl(User("y"), topicT, "t", literal, read, allow)); err != nil {
		t.Fatal(err)
	}
	if !z.Enabled() || z.Authorize(User("x"), "h", topicT, "t", write) {
		t.Fatal("the first ACL did not turn the authorizer on")
	}
	forced, _ := NewAuthorizer(nil, []Principal{User("root")}, true)
	if forced.Authorize(User("x"), "h", topicT, "t", read) || !forced.Authorize(User("root"), "h", topicT, "t", read) {
		t.Fatal("a forced authorizer without ACLs: only super users may act")
	}
}

func TestACLAddDeleteDescribe(t *testing.T) {
	z, _ := NewAuthorizer(nil, nil, false)
	a1 := acl(User("a"), topicT, "orders", literal, read, allow)
	a2 := acl(User("a"), topicT, "ord", prefixed, write, allow)
	a3 := acl(User("b"), groupT, "g", literal, read, allow)
	var saved []ACL
	persist := func(all []ACL) error { saved = all; return nil }
	if err := z.Add(persist, a1, a2, a3, a1); err != nil || len(saved) != 3 || len(z.ACLs()) != 3 {
		t.Fatalf("Add: saved %v, %v", saved, err)
	}
	// A set that could not be persisted is not enforced.
	a4 := acl(User("c"), topicT, "x", literal, read, allow)
	if err := z.Add(func([]ACL) error { return errors.New("disk full") }, a4); err == nil || len(z.ACLs()) != 3 || z.Authorize(User("c"), "h", topicT, "x", read) {
		t.Fatalf("an unpersisted ACL took effect: %v %v", err, z.ACLs())
	}
	name, userA := "orders", "User:a"
	match := Filter{ResourceType: topicT, ResourceName: &name, PatternType: kmsg.ACLResourcePatternTypeMatch, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	if got := z.Describe(match); len(got) != 2 {
		t.Fatalf("MATCH orders: %v, want the literal and the prefix", got)
	}
	lit := match
	lit.PatternType = literal
	if got := z.Describe(lit); len(got) != 1 || got[0] != a1 {
		t.Fatalf("LITERAL orders: %v", got)
	}
	byUser := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Principal: &userA, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	deleted, err := z.Delete(byUser, persist)
	if err != nil || len(deleted) != 2 || len(saved) != 1 || saved[0] != a3 {
		t.Fatalf("Delete by principal: %v, left %v, %v", deleted, saved, err)
	}
	if z.Authorize(User("a"), "h", topicT, "orders", read) {
		t.Fatal("a deleted ACL still allows")
	}
	for _, bad := range []ACL{
		{Principal: "alice", Host: "*", ResourceType: topicT, ResourceName: "t", PatternType: literal, Operation: read, Permission: allow},
		acl(User("a"), topicT, "", literal, read, allow),
		acl(User("a"), topicT, "*", prefixed, read, allow),
		acl(User("a"), clusterT, "other", literal, read, allow),
		acl(User("a"), topicT, "t", kmsg.ACLResourcePatternTypeMatch, read, allow),
		acl(User("a"), topicT, "t", literal, kmsg.ACLOperationAny, allow),
		acl(User("a"), topicT, "t", literal, read, kmsg.ACLPermissionTypeAny),
	} {
		if err := z.Add(nil, bad); err == nil {
			t.Errorf("Add(%v) accepted", bad)
		}
	}
}

// BenchmarkAuthorize1000: one decision among 1,000 ACLs (literal and
// prefixed, over 100 principals), the target being under 1 us.
func BenchmarkAuthorize1000(b *testing.B) {
	var acls []ACL
	for i := range 1000 {
		p := User(fmt.Sprintf("user-%d", i%100))
		if i%2 == 0 {
			acls = append(acls, acl(p, topicT, fmt.Sprintf("topic-%d", i), literal, read, allow))
		} else {
			acls = append(acls, acl(p, topicT, fmt.Sprintf("team-%d.", i%50), prefixed, write, allow))
		}
	}
	z, err := NewAuthorizer(acls, nil, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("literal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !z.Authorize("User:user-20", "10.0.0.1", topicT, "topic-120", read) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("prefixed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !z.Authorize("User:user-1", "10.0.0.1", topicT, "team-1.payments", write) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("refused", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if z.Authorize("User:user-1", "10.0.0.1", topicT, "topic-999999", write) {
				b.Fatal("allowed")
			}
		}
	})
}
