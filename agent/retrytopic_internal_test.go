package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func retryItems(topic string, key string, offsets ...int64) []item {
	items := make([]item, len(offsets))
	for i, o := range offsets {
		items[i].rec = &kgo.Record{Topic: topic, Key: []byte(key), Offset: o}
	}
	return items
}

// TestRetryOwed: what a key owes its retry partition is settled as the
// retry partition's events finish, and forgotten when the partitions are
// revoked; reading events back does not count them twice.
func TestRetryOwed(t *testing.T) {
	a, err := New("g", []string{"t"}, WithRetryTopic(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	src, rtp := tp{"t", 0}, tp{"t.g.retry", 0}
	a.mu.Lock()
	a.owedLocked(src)["a"] = 2 // one inherited (scanned), one parked by this member
	a.mu.Unlock()

	a.enqueue(src, retryItems("t", "a", 7))
	a.enqueue(rtp, retryItems("t.g.retry", "a", 0, 1))
	p, rp := a.mu.parts[src], a.mu.parts[rtp]
	if p.retryTopic != "t.g.retry" || rp.sourceTopic != "t" {
		t.Fatalf("partitions not linked: %q %q", p.retryTopic, rp.sourceTopic)
	}
	if got := a.mu.owed[src]["a"]; got != 2 {
		t.Fatalf("owed %d after reading the retry partition, want still 2", got)
	}
	finish := func(it *item) {
		a.mu.Lock()
		a.retryFinishedLocked(rp, []*item{it})
		a.mu.Unlock()
	}
	finish(rp.keys["a"].items[0])
	if !a.owes(p, p.keys["a"].items[0]) {
		t.Fatal("key a stopped owing with one event still in the retry partition")
	}
	finish(rp.keys["a"].items[1])
	if a.owes(p, p.keys["a"].items[0]) {
		t.Fatal("key a still owes after its parked events finished")
	}
	finish(rp.keys["a"].items[1]) // a stray finish (a zombie's event) does not go negative
	a.mu.Lock()
	a.owedLocked(src)["b"] = 1
	if _, ok := a.mu.owed[src]["a"]; ok {
		t.Fatal("a settled key is still listed")
	}
	a.dropRetryStateLocked(map[string][]int32{"t": {0}, "t.g.retry": {0}})
	n := len(a.mu.owed)
	a.mu.Unlock()
	if n != 0 {
		t.Fatalf("retry state left after revocation: %d entries", n)
	}
}

// TestPairedBalancer: partition p of a topic and of its retry topic go to
// the same member, topics are split in ranges, and every partition is
// assigned once.
func TestPairedBalancer(t *testing.T) {
	rt, err := newRetryTopics(time.Second, func(t, g string) string { return t + ".r" }, "g", []string{"x", "y"})
	if err != nil {
		t.Fatal(err)
	}
	b := pairedBalancer{rt}
	var members []kmsg.JoinGroupResponseMember
	for _, id := range []string{"m1", "m2", "m3"} {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = id
		m.ProtocolMetadata = b.JoinGroupMetadata([]string{"x", "x.r", "y", "y.r"}, nil, 1)
		members = append(members, m)
	}
	mb, topics, err := b.MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 4 {
		t.Fatalf("member topics %v", topics)
	}
	counts := map[string]int32{"x": 5, "x.r": 5, "y": 2, "y.r": 2}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(counts)
	if err != nil {
		t.Fatal(err)
	}
	plan := into.(*kgo.BalancePlan)
	owner := map[string]string{}
	for member, ts := range plan.AsMemberIDMap() {
		for topic, ps := range ts {
			for _, p := range ps {
				k := fmt.Sprintf("%s/%d", topic, p)
				if prev, dup := owner[k]; dup {
					t.Fatalf("%s assigned to %s and %s", k, prev, member)
				}
				owner[k] = member
			}
		}
	}
	for topic, n := range counts {
		for p := range n {
			k := fmt.Sprintf("%s/%d", topic, p)
			if owner[k] == "" {
				t.Fatalf("%s not assigned: %v", k, owner)
			}
		}
	}
	for _, topic := range []string{"x", "y"} {
		for p := range counts[topic] {
			a, r := owner[fmt.Sprintf("%s/%d", topic, p)], owner[fmt.Sprintf("%s.r/%d", topic, p)]
			if a != r {
				t.Fatalf("%s[%d] is %s's but its retry partition is %s's", topic, p, a, r)
			}
		}
	}
	// Ranges: x's five partitions over three members as 2, 2, 1.
	if owner["x/0"] != owner["x/1"] || owner["x/2"] != owner["x/3"] || owner["x/1"] == owner["x/2"] || owner["x/3"] == owner["x/4"] {
		t.Fatalf("x not split in ranges: %v", owner)
	}
	if got, err := b.ParseSyncAssignment(nil); err == nil && len(got) != 0 {
		t.Fatalf("empty assignment parsed as %v", got)
	}
}

// TestNewRejectsBadRetryTopicNames: a retry topic must differ from its
// topic, from the other retry topics and from the consumed topics.
func TestNewRejectsBadRetryTopicNames(t *testing.T) {
	for name, fn := range map[string]func(t, g string) string{
		"same as topic": func(t, _ string) string { return t },
		"shared":        func(string, string) string { return "r" },
		"a topic":       func(t, _ string) string { return map[string]string{"a": "b", "b": "c"}[t] },
	} {
		if _, err := New("g", []string{"a", "b"}, WithRetryTopic(time.Second), WithRetryTopicName(fn)); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// TestRetryRecordHeaders: a retry record replaces the retry headers of an
// earlier park and keeps every other header, including the application's
// own that merely start with "retry_"; originalRecord drops only the retry
// headers.
func TestRetryRecordHeaders(t *testing.T) {
	r := &kgo.Record{Topic: "t.g.retry", Partition: 2, Offset: 9, Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: "ce_type", Value: []byte("x")},
		{Key: "retry_hint", Value: []byte("app")},
		{Key: HeaderRetryAttempts, Value: []byte("1")},
		{Key: HeaderRetryNotBefore, Value: []byte("")},
		{Key: HeaderRetryOriginalOffset, Value: []byte("4")},
	}}
	due := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	rr := retryRecord("t.g.retry", r, 4, 2, due)
	attempts, nb, orig := parseRetryHeaders(rr)
	if attempts != 2 || !nb.Equal(due) || orig != 4 || rr.Partition != 2 {
		t.Fatalf("retry record: attempts %d, not before %v, original offset %d, partition %d", attempts, nb, orig, rr.Partition)
	}
	var keys []string
	for _, h := range rr.Headers {
		keys = append(keys, h.Key)
	}
	if want := []string{"ce_type", "retry_hint", HeaderRetryNotBefore, HeaderRetryAttempts, HeaderRetryOriginalOffset}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("headers %v, want %v", keys, want)
	}
	o := originalRecord(rr, "t", orig)
	if o.Topic != "t" || o.Offset != 4 || len(o.Headers) != 2 || o.Headers[1].Key != "retry_hint" {
		t.Fatalf("original record %s@%d headers %v", o.Topic, o.Offset, o.Headers)
	}
}
