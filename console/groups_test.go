package console_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// grpAdmin returns a kadm client on addrs, closed by t.Cleanup.
func grpAdmin(t testing.TB, addrs []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// grpProduce writes n records to each of the partitions of topic.
func grpProduce(t testing.TB, addrs []string, topic string, n int, partitions ...int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for _, p := range partitions {
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "v%d", i)})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// grpCommit commits offsets (partition -> offset) of topic for group.
func grpCommit(t testing.TB, adm *kadm.Client, group, topic string, offsets map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var os kadm.Offsets
	for p, o := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
}

// grpPost submits form to url as htmx does and returns the status and body.
func grpPost(t testing.TB, u string, form url.Values, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// grpProblem checks a problem+json answer with status and a detail
// containing want.
func grpProblem(t *testing.T, what string, status int, body string, wantStatus int, want string) {
	t.Helper()
	if status != wantStatus || !strings.Contains(body, want) || !strings.Contains(body, fmt.Sprintf(`"status":%d`, wantStatus)) {
		t.Errorf("%s: %d %s, want %d problem with %q", what, status, body, wantStatus, want)
	}
}

// grpRows returns the data-group attributes of the list's rows, in order.
func grpRows(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`data-group="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestGroupsList(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "gl", 2)
		grpProduce(t, addrs, "gl", 10, 0, 1)
		adm := grpAdmin(t, addrs)
		grpCommit(t, adm, "gl-behind", "gl", map[int32]int64{0: 2, 1: 3}) // lag 15
		grpCommit(t, adm, "gl-caught-up", "gl", map[int32]int64{0: 10, 1: 10})
		grpCommit(t, adm, "other", "gl", map[int32]int64{0: 9}) // lag 1 + 10 (partition 1 uncommitted)
		_, base := startConsole(t, addrs, console.Config{})
		u := base + "/ui/groups"

		status, body := get(t, u)
		if status != http.StatusOK {
			t.Fatalf("GET groups: %d %s", status, body)
		}
		if got := grpRows(body); strings.Join(got, ",") != "gl-behind,gl-caught-up,other" {
			t.Fatalf("by name: %v", got)
		}
		if !strings.Contains(body, `aria-sort="ascending"`) || !strings.Contains(body, `href="/ui/groups?dir=desc&amp;sort=name"`) {
			t.Errorf("name header is not marked sorted with a link to the descending order:\n%s", body)
		}
		if !strings.Contains(body, `<td class="n lag">15</td>`) {
			t.Errorf("gl-behind's lag 15 not shown")
		}
		_, body = get(t, u+"?sort=lag&dir=desc")
		if got := grpRows(body); strings.Join(got, ",") != "gl-behind,other,gl-caught-up" {
			t.Errorf("by lag descending: %v", got)
		}
		if !strings.Contains(body, `aria-sort="descending"`) {
			t.Errorf("lag header not aria-sort=descending")
		}
		_, body = get(t, u+"?minlag=1&q=GL")
		if got := grpRows(body); strings.Join(got, ",") != "gl-behind" {
			t.Errorf("min lag 1, name contains GL: %v", got)
		}
		_, body = get(t, u+"?state=Stable")
		if got := grpRows(body); len(got) != 0 || !strings.Contains(body, "match the filters") {
			t.Errorf("state Stable: %v", got)
		}
		_, body = get(t, u+"?state=Empty&sort=members")
		if got := grpRows(body); len(got) != 3 {
			t.Errorf("state Empty: %v", got)
		}
		for _, q := range []string{"sort=size", "dir=up", "state=Happy", "minlag=-1", "minlag=x"} {
			status, body := get(t, u+"?"+q, "Accept", "application/json")
			grpProblem(t, q, status, body, http.StatusBadRequest, "want")
		}
	})
}

func TestGroupsListACL(t *testing.T) {
	addrs := startKfakeWithTopics(t, "acl-t")
	adm := grpAdmin(t, addrs)
	grpCommit(t, adm, "seen", "acl-t", map[int32]int64{0: 0})
	grpCommit(t, adm, "hidden", "acl-t", map[int32]int64{0: 0})
	_, base := startConsole(t, addrs, console.Config{Authorizer: aclAuthorizer(t,
		allow("ann", groupResource, "seen", kmsg.ACLOperationDescribe))})
	_, body := get(t, base+"/ui/groups", "Authorization", "Bearer ann")
	if got := grpRows(body); strings.Join(got, ",") != "seen" {
		t.Errorf("ann sees %v, want only seen", got)
	}
	status, body := get(t, base+"/ui/groups/hidden", "Authorization", "Bearer ann", "Accept", "application/json")
	grpProblem(t, "hidden group", status, body, http.StatusForbidden, `may not DESCRIBE GROUP \"hidden\"`)
}

const groupResource = kmsg.ACLResourceTypeGroup
const topicResource = kmsg.ACLResourceTypeTopic

func TestGroupDetail(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "gd", 2)
		grpProduce(t, addrs, "gd", 5, 0, 1)
		adm := grpAdmin(t, addrs)
		grpCommit(t, adm, "gd-g", "gd", map[int32]int64{0: 1, 1: 5})
		_, base := startConsole(t, addrs, console.Config{})
		status, body := get(t, base+"/ui/groups/gd-g")
		if status != http.StatusOK {
			t.Fatalf("GET group: %d %s", status, body)
		}
		for _, want := range []string{`id="total-lag">4<`, `data-tp="gd/0"`, `data-tp="gd/1"`, `sse-connect="/ui/groups/gd-g/live"`, "No members"} {
			if !strings.Contains(body, want) {
				t.Errorf("group page lacks %q", want)
			}
		}
		// A name that needs escaping in a path.
		odd := "team/a b%?"
		grpCommit(t, adm, odd, "gd", map[int32]int64{0: 0})
		_, list := get(t, base+"/ui/groups")
		if !strings.Contains(list, `href="/ui/groups/team%2Fa%20b%25%3F"`) {
			t.Errorf("the list does not link %q escaped", odd)
		}
		status, body = get(t, base+"/ui/groups/team%2Fa%20b%25%3F")
		if status != http.StatusOK || !strings.Contains(body, `sse-connect="/ui/groups/team%2Fa%20b%25%3F/live"`) {
			t.Errorf("group %q: %d", odd, status)
		}
		status, body = grpPost(t, base+"/ui/groups/team%2Fa%20b%25%3F/reset", url.Values{"mode": {"latest"}})
		if status != http.StatusOK || !strings.Contains(body, `data-tp="gd/0"`) {
			t.Errorf("dry run of %q: %d %s", odd, status, body)
		}
		status, body = get(t, base+"/ui/groups/no-such-group")
		if status != http.StatusNotFound || !strings.Contains(body, `no consumer group &#34;no-such-group&#34;`) {
			t.Errorf("unknown group page: %d %s", status, body)
		}
		status, body = grpPost(t, base+"/ui/groups/no-such-group/reset", url.Values{"mode": {"earliest"}})
		grpProblem(t, "reset of an unknown group", status, body, http.StatusNotFound, "no consumer group")
	})
}

// grpOffsets returns the committed offsets of group on topic, read back
// with kadm.
func grpOffsets(t testing.TB, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, o := range os[topic] {
		if o.At >= 0 {
			out[p] = o.At
		}
	}
	return out
}

// grpSets returns the apply form's "set" values of a dry run's fragment.
func grpSets(t *testing.T, body string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range regexp.MustCompile(`name="set" value="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		v.Add("set", m[1])
	}
	if len(v["set"]) == 0 {
		t.Fatalf("dry run has no apply form:\n%s", body)
	}
	return v
}

func TestGroupReset(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "gr", 3)
		grpProduce(t, addrs, "gr", 10, 0, 1, 2)
		adm := grpAdmin(t, addrs)
		grpCommit(t, adm, "gr-g", "gr", map[int32]int64{0: 4, 1: 4})
		_, base := startConsole(t, addrs, console.Config{})
		reset := base + "/ui/groups/gr-g/reset"
		dry := func(form url.Values) string {
			t.Helper()
			status, body := grpPost(t, reset, form)
			if status != http.StatusOK {
				t.Fatalf("dry run %v: %d %s", form, status, body)
			}
			return body
		}
		apply := func(body string) {
			t.Helper()
			status, out := grpPost(t, reset, grpSets(t, body))
			if status != http.StatusOK || !strings.Contains(out, `id="reset-done"`) {
				t.Fatalf("apply: %d %s", status, out)
			}
		}
		want := func(what string, exp map[int32]int64) {
			t.Helper()
			if got := grpOffsets(t, adm, "gr-g", "gr"); fmt.Sprint(got) != fmt.Sprint(exp) {
				t.Fatalf("%s: committed %v, want %v", what, got, exp)
			}
		}

		// All topics of the group: the partitions it has offsets on.
		body := dry(url.Values{"mode": {"earliest"}})
		if !strings.Contains(body, "2 of 2 partitions change") || strings.Contains(body, `data-tp="gr/2"`) {
			t.Fatalf("earliest over the group's partitions:\n%s", body)
		}
		want("a dry run changes nothing", map[int32]int64{0: 4, 1: 4})
		apply(body)
		want("earliest", map[int32]int64{0: 0, 1: 0})

		// One topic, chosen partitions; a shift past the end is clamped.
		body = dry(url.Values{"mode": {"shift"}, "shift": {"25"}, "topic": {"gr"}, "partitions": {"1"}})
		if !strings.Contains(body, "25 is past the log end") || !strings.Contains(body, `<td class="n new">10</td>`) {
			t.Errorf("shift past the end is not clamped to it:\n%s", body)
		}
		status, body := grpPost(t, reset, url.Values{"mode": {"shift"}, "shift": {"3"}, "topic": {"gr"}})
		grpProblem(t, "shift of a partition without a commit", status, body, http.StatusBadRequest, "gr[2] has no committed offset")

		body = dry(url.Values{"mode": {"latest"}, "topic": {"gr"}, "partitions": {"2"}})
		apply(body)
		want("latest on partition 2", map[int32]int64{0: 0, 1: 0, 2: 10})

		body = dry(url.Values{"mode": {"shift"}, "shift": {"-3"}, "topic": {"gr"}})
		apply(body)
		want("shift -3 (clamped at the start)", map[int32]int64{0: 0, 1: 0, 2: 7})

		body = dry(url.Values{"mode": {"offset"}, "offset": {"6"}, "topic": {"gr"}, "partitions": {"0,1"}})
		apply(body)
		want("offset 6", map[int32]int64{0: 6, 1: 6, 2: 7})

		// Exact per partition: an empty field leaves the partition alone.
		body = dry(url.Values{"mode": {"exact"}, "xt": {"gr", "gr", "gr"}, "xp": {"0", "1", "2"}, "xo": {"2", "", "9"}})
		if !strings.Contains(body, "2 of 2 partitions change") {
			t.Errorf("exact dry run:\n%s", body)
		}
		apply(body)
		want("exact", map[int32]int64{0: 2, 1: 6, 2: 9})

		// To a time: before every record is the start; in the future the end.
		body = dry(url.Values{"mode": {"time"}, "time": {"2000-01-01T00:00:00Z"}})
		apply(body)
		want("time before the records", map[int32]int64{0: 0, 1: 0, 2: 0})
		body = dry(url.Values{"mode": {"time"}, "time": {time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")}})
		apply(body)
		want("time after the records", map[int32]int64{0: 10, 1: 10, 2: 10})

		for _, c := range []struct {
			what string
			form url.Values
			want string
		}{
			{"bad time", url.Values{"mode": {"time"}, "time": {"yesterday-ish"}}, `time \"yesterday-ish\"`},
			{"no mode", url.Values{}, "choose a mode"},
			{"bad mode", url.Values{"mode": {"to-the-moon"}}, "reset mode"},
			{"unknown topic", url.Values{"mode": {"earliest"}, "topic": {"no-such-topic"}}, `no topic \"no-such-topic\"`},
			{"unknown partition", url.Values{"mode": {"earliest"}, "topic": {"gr"}, "partitions": {"7"}}, "has no partition 7"},
			{"bad partitions", url.Values{"mode": {"earliest"}, "topic": {"gr"}, "partitions": {"a-b"}}, "want numbers and ranges"},
			{"exact on an unknown partition", url.Values{"mode": {"exact"}, "xt": {"gr"}, "xp": {"9"}, "xo": {"1"}}, "has no partition 9"},
			{"exact with no offset", url.Values{"mode": {"exact"}, "xt": {"gr"}, "xp": {"0"}, "xo": {""}}, "at least one partition"},
			{"negative offset", url.Values{"mode": {"offset"}, "offset": {"-1"}}, "want a whole number"},
			{"apply to an unknown partition", url.Values{"set": {"5:1:gr"}}, "has no partition 5"},
			{"apply to an unknown topic", url.Values{"set": {"0:1:nope"}}, `no topic \"nope\"`},
			{"apply garbage", url.Values{"set": {"x"}}, "want partition:offset:topic"},
			{"a form over 1 MiB", url.Values{"mode": {"earliest"}, "pad": {strings.Repeat("x", 1<<20)}}, "too large"},
		} {
			status, body := grpPost(t, reset, c.form)
			grpProblem(t, c.what, status, body, http.StatusBadRequest, c.want)
		}
		want("refused resets change nothing", map[int32]int64{0: 10, 1: 10, 2: 10})

		// Delete the group's offsets of the topic, then the group.
		status, body = grpPost(t, base+"/ui/groups/gr-g/delete-offsets", url.Values{"topic": {"other"}})
		grpProblem(t, "delete offsets of a topic without any", status, body, http.StatusBadRequest, "no committed offsets on topic")
		status, body = grpPost(t, base+"/ui/groups/gr-g/delete-offsets", url.Values{"topic": {"gr"}})
		if status != http.StatusOK || !strings.Contains(body, "3 partitions") {
			t.Fatalf("delete offsets: %d %s", status, body)
		}
		want("offsets deleted", map[int32]int64{})
		grpCommit(t, adm, "gr-g", "gr", map[int32]int64{0: 1})
		status, body = grpPost(t, base+"/ui/groups/gr-g/delete", url.Values{"confirm": {"gr-g"}})
		if status != http.StatusNoContent {
			t.Fatalf("delete group: %d %s", status, body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := listed["gr-g"]; ok {
			t.Errorf("gr-g still listed after delete: %v", listed.Groups())
		}
		status, body = grpPost(t, base+"/ui/groups/gr-g/delete", url.Values{"confirm": {"gr-g"}})
		grpProblem(t, "delete a deleted group", status, body, http.StatusNotFound, "no consumer group")
	})
}

// grpJoin starts a consumer of group on topic and waits until the group
// is Stable with it as a member.
func grpJoin(t *testing.T, addrs []string, adm *kadm.Client, group, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(kafkatest.SessionTimeout(addrs)), kgo.ClientID("reset-test"), kgo.HeartbeatInterval(100*time.Millisecond))
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
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	kafkatest.Eventually(t, 30*time.Second, group+" stable", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ds, err := adm.DescribeGroups(ctx, group)
		return err == nil && ds[group].State == "Stable" && len(ds[group].Members) == 1
	})
}

func TestGroupActiveRefused(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "ga", 2)
		grpProduce(t, addrs, "ga", 3, 0, 1)
		adm := grpAdmin(t, addrs)
		grpCommit(t, adm, "ga-g", "ga", map[int32]int64{0: 1, 1: 1})
		_, base := startConsole(t, addrs, console.Config{})
		// A dry run while the group is still Empty gives the apply form...
		status, plan := grpPost(t, base+"/ui/groups/ga-g/reset", url.Values{"mode": {"earliest"}})
		if status != http.StatusOK {
			t.Fatalf("dry run: %d %s", status, plan)
		}
		grpJoin(t, addrs, adm, "ga-g", "ga")
		_, page := get(t, base+"/ui/groups/ga-g")
		if !strings.Contains(page, "reset-test") || !strings.Contains(page, `id="reset-active"`) {
			t.Errorf("the page does not show the member and the refusal note:\n%s", page)
		}
		// ...which is refused once a consumer runs, as are the others.
		for what, c := range map[string]struct {
			path string
			form url.Values
		}{
			"apply":          {"reset", grpSets(t, plan)},
			"dry run":        {"reset", url.Values{"mode": {"latest"}}},
			"delete":         {"delete", url.Values{"confirm": {"ga-g"}}},
			"delete offsets": {"delete-offsets", url.Values{"topic": {"ga"}}},
		} {
			status, body := grpPost(t, base+"/ui/groups/ga-g/"+c.path, c.form)
			grpProblem(t, what, status, body, http.StatusConflict, "stop the consumers first")
		}
		// The broker refuses the commit too (the console maps that to 409).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "ga", Partition: 0, At: 0, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, "ga-g", os)
		if err == nil {
			err = resp.Error()
		}
		if !errors.Is(err, kerr.UnknownMemberID) {
			t.Errorf("a commit to a group with members: %v, want UNKNOWN_MEMBER_ID", err)
		}
		if got := grpOffsets(t, adm, "ga-g", "ga"); got[0] == 0 && got[1] == 0 {
			t.Errorf("a refused reset committed: %v", got)
		}
	})
}

func TestGroupWritesRefused(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "gw", 1)
		grpProduce(t, addrs, "gw", 3, 0)
		adm := grpAdmin(t, addrs)
		grpCommit(t, adm, "gw-g", "gw", map[int32]int64{0: 2})

		_, ro := startConsole(t, addrs, console.Config{ReadOnly: true})
		status, plan := grpPost(t, ro+"/ui/groups/gw-g/reset", url.Values{"mode": {"earliest"}})
		if status != http.StatusOK || !strings.Contains(plan, `id="reset-apply" disabled`) {
			t.Fatalf("read-only dry run: %d %s", status, plan)
		}
		for what, c := range map[string]struct {
			path string
			form url.Values
		}{
			"apply": {"reset", grpSets(t, plan)}, "delete": {"delete", url.Values{"confirm": {"gw-g"}}},
			"delete offsets": {"delete-offsets", url.Values{"topic": {"gw"}}},
		} {
			status, body := grpPost(t, ro+"/ui/groups/gw-g/"+c.path, c.form)
			grpProblem(t, "read-only "+what, status, body, http.StatusForbidden, "read-only mode")
		}

		_, sec := startConsole(t, addrs, console.Config{Authorizer: aclAuthorizer(t,
			allow("viewer", groupResource, "gw-g", kmsg.ACLOperationDescribe),
			allow("viewer", topicResource, "gw", kmsg.ACLOperationDescribe),
			allow("resetter", groupResource, "gw-g", kmsg.ACLOperationRead),
			allow("resetter", topicResource, "gw", kmsg.ACLOperationDescribe),
			allow("grouponly", groupResource, "gw-g", kmsg.ACLOperationRead),
		)})
		status, plan = grpPost(t, sec+"/ui/groups/gw-g/reset", url.Values{"mode": {"earliest"}}, "Authorization", "Bearer viewer")
		if status != http.StatusOK {
			t.Fatalf("viewer's dry run: %d %s", status, plan)
		}
		for _, c := range []struct {
			user, path string
			form       url.Values
			want       string
		}{
			{"viewer", "reset", grpSets(t, plan), `may not READ GROUP \"gw-g\"`},
			{"grouponly", "reset", grpSets(t, plan), `may not READ TOPIC \"gw\"`},
			{"resetter", "delete", url.Values{"confirm": {"gw-g"}}, `may not DELETE GROUP \"gw-g\"`},
			{"viewer", "delete-offsets", url.Values{"topic": {"gw"}}, `may not DELETE GROUP`},
			{"nobody", "reset", url.Values{"mode": {"earliest"}}, `may not DESCRIBE GROUP`},
		} {
			status, body := grpPost(t, sec+"/ui/groups/gw-g/"+c.path, c.form, "Authorization", "Bearer "+c.user)
			grpProblem(t, c.user+" "+c.path, status, body, http.StatusForbidden, c.want)
		}
		status, body := get(t, sec+"/ui/groups/gw-g", "Authorization", "Bearer nobody")
		if status != http.StatusForbidden {
			t.Errorf("nobody's group page: %d %s", status, body)
		}
		if got := grpOffsets(t, adm, "gw-g", "gw"); got[0] != 2 {
			t.Errorf("refused writes changed the offsets: %v", got)
		}
	})
}

// grpStreamWriter is an http.ResponseWriter whose body is a pipe, so a test
// reads a server-sent event stream as it is written.
type grpStreamWriter struct {
	h  http.Header
	pw *io.PipeWriter
}

func (w *grpStreamWriter) Header() http.Header         { return w.h }
func (w *grpStreamWriter) WriteHeader(int)             {}
func (w *grpStreamWriter) Write(b []byte) (int, error) { return w.pw.Write(b) }
func (w *grpStreamWriter) Flush()                      {}

// grpOpenLive serves GET path by h in a goroutine and returns its events'
// data (one string per event) and a channel closed when the handler
// returned.
func grpOpenLive(ctx context.Context, h http.Handler, path string) (<-chan string, <-chan struct{}) {
	pr, pw := io.Pipe()
	w := &grpStreamWriter{h: http.Header{}, pw: pw}
	returned := make(chan struct{})
	go func() {
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil).WithContext(ctx))
		close(returned)
		pw.Close()
	}()
	events := make(chan string, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		var ev strings.Builder
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Len() > 0 {
					events <- ev.String()
					ev.Reset()
				}
			case strings.HasPrefix(line, "data: "):
				ev.WriteString(line[len("data: "):] + "\n")
			}
		}
	}()
	return events, returned
}

// grpWaitEvent waits for an event containing want.
func grpWaitEvent(t *testing.T, events <-chan string, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended before an event with %q", want)
			}
			if strings.Contains(ev, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no event with %q", want)
		}
	}
}

func grpReturned(t *testing.T, returned <-chan struct{}, why string) {
	t.Helper()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatalf("the live handler did not return after %s", why)
	}
}

func TestGroupLive(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "glive", 1)
		grpProduce(t, addrs, "glive", 2, 0)
		adm := grpAdmin(t, addrs)
		grpCommit(t, adm, "glive-g", "glive", map[int32]int64{0: 0})
		c, base := startConsole(t, addrs, console.Config{SampleInterval: 50 * time.Millisecond})

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events, returned := grpOpenLive(ctx, c.Handler(), "/ui/groups/glive-g/live")
		grpWaitEvent(t, events, `id="total-lag">2<`)
		grpProduce(t, addrs, "glive", 3, 0)
		grpWaitEvent(t, events, `id="total-lag">5<`)
		grpCommit(t, adm, "glive-g", "glive", map[int32]int64{0: 4})
		grpWaitEvent(t, events, `id="total-lag">1<`)
		// A consumer joining shows in the stream: the state and the member.
		grpJoin(t, addrs, adm, "glive-g", "glive")
		grpWaitEvent(t, events, `id="group-state">Stable<`)
		cancel()
		grpReturned(t, returned, "the client went away")

		events, returned = grpOpenLive(context.Background(), c.Handler(), "/ui/groups/glive-g/live")
		grpWaitEvent(t, events, "reset-test")
		c.EndStreams() // what spool serve's http.Server.Shutdown calls
		grpReturned(t, returned, "the streams were ended")
		if status, _ := get(t, base+"/ui/groups/glive-g"); status != http.StatusOK {
			t.Errorf("the page after EndStreams: %d", status)
		}

		events, returned = grpOpenLive(context.Background(), c.Handler(), "/ui/groups/glive-g/live")
		c.Close()
		grpReturned(t, returned, "the console closed")

		rec := httptestGet(c.Handler(), "/ui/groups/glive-g/live")
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("live after Close: %d %s", rec.Code, rec.Body)
		}
	})
}
