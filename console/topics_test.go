package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// topicsPost posts the form to url (header pairs after it) and returns
// the status, the body and the response's headers.
func topicsPost(t testing.TB, url string, form url.Values, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// wantProblem checks an application/problem+json answer: its status and
// that its detail holds every one of wants.
func wantProblem(t testing.TB, what string, status int, body string, hdr http.Header, wantStatus int, wants ...string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d: %s", what, status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json: %s", what, ct, body)
	}
	var p struct {
		Status int
		Detail string
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != wantStatus {
		t.Fatalf("%s: problem %q: %v", what, body, err)
	}
	for _, w := range wants {
		if !strings.Contains(p.Detail, w) {
			t.Errorf("%s: detail %q lacks %q", what, p.Detail, w)
		}
	}
}

func adminClient(t testing.TB, addrs []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produceN writes n records to partition 0 of topic.
func produceN(t testing.TB, addrs []string, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(strings.Repeat("x", 100+i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

func topicConfig(t testing.TB, adm *kadm.Client, topic, key string) (string, kmsg.ConfigSource) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue(), c.Source
		}
	}
	return "", 0
}

func TestTopicsCreateListEditDelete(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		adm := adminClient(t, addrs)
		_, base := startConsole(t, addrs, console.Config{})
		ui := base + "/ui/"

		// Create through htmx: 204 with HX-Redirect to the topic's page.
		status, body, hdr := topicsPost(t, ui+"topics", url.Values{"name": {"orders.v1"}, "partitions": {"3"},
			"replication": {"1"}, "configs": {"retention.ms=3600000\n# a comment\n\nretention.bytes = 1048576"}}, "HX-Request", "true")
		if status != http.StatusNoContent || hdr.Get("HX-Redirect") != "/ui/topics/orders.v1" {
			t.Fatalf("create: %d %q %s", status, hdr.Get("HX-Redirect"), body)
		}
		if v, src := topicConfig(t, adm, "orders.v1", "retention.ms"); v != "3600000" || src != kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("created topic's retention.ms %q from %v", v, src)
		}
		// A plain form post (no JavaScript) is redirected with 303.
		status, _, hdr = topicsPost(t, ui+"topics", url.Values{"name": {"payments"}})
		if status != http.StatusSeeOther || hdr.Get("Location") != "/ui/topics/payments" {
			t.Fatalf("create without htmx: %d %q", status, hdr.Get("Location"))
		}
		produceN(t, addrs, "orders.v1", 5)

		status, body = get(t, ui+"topics")
		if status != http.StatusOK {
			t.Fatalf("list: %d %s", status, body)
		}
		row := rowOf(t, body, `data-topic="orders.v1"`)
		for _, want := range []string{">3<", `records">5<`, `retention">1h<`, ">1.0 MiB<", ">delete<"} {
			if !strings.Contains(row, want) {
				t.Errorf("list row of orders.v1 lacks %q: %s", want, row)
			}
		}
		// 5 records of 100 bytes and more: DescribeLogDirs counts them.
		if size := cell(row, "size"); size == "–" || size == "0 B" {
			t.Errorf("orders.v1's size is %q", size)
		}
		if !strings.Contains(body, `data-topic="payments"`) {
			t.Error("list lacks payments")
		}
		// Sorting: by records, biggest first, then the other way.
		for _, tc := range []struct{ dir, first string }{{"desc", "orders.v1"}, {"asc", "payments"}} {
			dir, first := tc.dir, tc.first
			status, body = get(t, ui+"topics?sort=records&dir="+dir)
			o, p := strings.Index(body, `data-topic="orders.v1"`), strings.Index(body, `data-topic="payments"`)
			if status != http.StatusOK || o < 0 || p < 0 || (first == "orders.v1") != (o < p) {
				t.Fatalf("sort by records %s: %d, orders.v1 at %d, payments at %d", dir, status, o, p)
			}
		}
		if !strings.Contains(body, `aria-sort="ascending"><a href="/ui/topics?dir=desc&amp;sort=records">Records ▲`) {
			t.Error("the sorted column's header neither says it nor links the other direction")
		}
		for _, bad := range []string{"sort=bogus", "sort=size&dir=sideways"} {
			status, body = get(t, ui+"topics?"+bad, "Accept", "application/json")
			if status != http.StatusBadRequest || !strings.Contains(body, "want") {
				t.Errorf("%s: %d %s", bad, status, body)
			}
		}

		// The filter keeps matching names; htmx gets the table alone.
		status, body = get(t, ui+"topics?q=ORDERS", "HX-Request", "true", "HX-Target", "topic-list")
		if status != http.StatusOK || strings.Contains(body, "<html") || !strings.Contains(body, `data-topic="orders.v1"`) || strings.Contains(body, `data-topic="payments"`) {
			t.Fatalf("filtered fragment: %d %s", status, body)
		}

		status, body = get(t, ui+"topics/orders.v1")
		if status != http.StatusOK {
			t.Fatalf("detail: %d %s", status, body)
		}
		p0 := rowOf(t, body, `data-partition="0"`)
		if !strings.Contains(p0, `start">0<`) || !strings.Contains(p0, `end">5<`) {
			t.Errorf("partition 0 row: %s", p0)
		}
		if size := cell(p0, "size"); size == "–" || size == "0 B" {
			t.Errorf("partition 0's size is %q", size)
		}
		if !strings.Contains(rowOf(t, body, `data-partition="2"`), `end">0<`) {
			t.Error("partition 2 is not empty")
		}
		if !strings.Contains(body, `href="/ui/topics/orders.v1/messages"`) {
			t.Error("detail lacks the link to the messages")
		}
		if !strings.Contains(rowOf(t, body, `data-config="retention.ms"`), "topic override") {
			t.Error("retention.ms is not shown as a topic override")
		}

		// Edit retention.ms: htmx gets the configs fragment, the broker
		// has the value.
		status, body, _ = topicsPost(t, ui+"topics/orders.v1/configs", url.Values{"name": {"retention.ms"}, "value": {"7200000"}}, "HX-Request", "true")
		if status != http.StatusOK || !strings.Contains(body, `id="configs"`) || !strings.Contains(body, "retention.ms set to 7200000") {
			t.Fatalf("alter: %d %s", status, body)
		}
		if v, _ := topicConfig(t, adm, "orders.v1", "retention.ms"); v != "7200000" {
			t.Fatalf("retention.ms after the edit: %q", v)
		}
		// Reset removes the override.
		status, body, _ = topicsPost(t, ui+"topics/orders.v1/configs", url.Values{"name": {"retention.bytes"}, "op": {"delete"}}, "HX-Request", "true")
		if status != http.StatusOK || !strings.Contains(body, "retention.bytes reset to its default") {
			t.Fatalf("reset: %d %s", status, body)
		}
		if _, src := topicConfig(t, adm, "orders.v1", "retention.bytes"); src == kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatal("retention.bytes is still a topic override")
		}

		// Partitions: added, never removed.
		status, body, hdr = topicsPost(t, ui+"topics/orders.v1/partitions", url.Values{"count": {"5"}}, "HX-Request", "true")
		if status != http.StatusNoContent || hdr.Get("HX-Redirect") != "/ui/topics/orders.v1" {
			t.Fatalf("add partitions: %d %s", status, body)
		}
		_, body = get(t, ui+"topics/orders.v1")
		if !strings.Contains(body, `id="partition-count">5<`) || !strings.Contains(body, `data-partition="4"`) {
			t.Fatal("the topic page does not show the 5 partitions")
		}
		status, body, hdr = topicsPost(t, ui+"topics/orders.v1/partitions", url.Values{"count": {"2"}}, "HX-Request", "true")
		wantProblem(t, "fewer partitions", status, body, hdr, http.StatusBadRequest, "INVALID_PARTITIONS", `"orders.v1"`)
		status, body, hdr = topicsPost(t, ui+"topics/nope/partitions", url.Values{"count": {"2"}}, "HX-Request", "true")
		wantProblem(t, "partitions of a missing topic", status, body, hdr, http.StatusNotFound, "UNKNOWN_TOPIC_OR_PARTITION")
		status, body, hdr = topicsPost(t, ui+"topics/orders.v1/partitions", url.Values{}, "HX-Request", "true")
		wantProblem(t, "no count", status, body, hdr, http.StatusBadRequest, "how many partitions")

		// Delete: a wrong confirmation is refused and deletes nothing.
		status, body, hdr = topicsPost(t, ui+"topics/orders.v1/delete", url.Values{"confirm": {"orders"}}, "HX-Request", "true")
		wantProblem(t, "delete with a wrong confirmation", status, body, hdr, http.StatusBadRequest, `type the topic's name`, `"orders"`)
		if topicExists(t, addrs, "orders.v1") != true {
			t.Fatal("a refused delete deleted the topic")
		}
		status, body, hdr = topicsPost(t, ui+"topics/orders.v1/delete", url.Values{"confirm": {"orders.v1"}}, "HX-Request", "true")
		if status != http.StatusNoContent || hdr.Get("HX-Redirect") != "/ui/topics?deleted=orders.v1" {
			t.Fatalf("delete: %d %q %s", status, hdr.Get("HX-Redirect"), body)
		}
		kafkatest.Eventually(t, 30*time.Second, "orders.v1 deleted", func() bool { return !topicExists(t, addrs, "orders.v1") })
		status, body = get(t, ui+"topics?deleted=orders.v1")
		if status != http.StatusOK || !strings.Contains(body, `id="topic-deleted"`) || strings.Contains(body, `data-topic="orders.v1"`) {
			t.Fatalf("list after delete: %d %s", status, body)
		}
	})
}

func TestTopicsFailures(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "exists", 1)
		_, base := startConsole(t, addrs, console.Config{})
		ui := base + "/ui/"
		hx := []string{"HX-Request", "true"}

		status, body, hdr := topicsPost(t, ui+"topics", url.Values{"name": {"exists"}}, hx...)
		wantProblem(t, "create an existing topic", status, body, hdr, http.StatusConflict, "TOPIC_ALREADY_EXISTS", `"exists"`)
		// "ex.ists" collides with "exists"? No: '.' and '_' do.
		kafkatest.CreateTopic(t, addrs, "ex.ists", 1)
		status, body, hdr = topicsPost(t, ui+"topics", url.Values{"name": {"ex_ists"}}, hx...)
		wantProblem(t, "create a colliding name", status, body, hdr, http.StatusBadRequest, "INVALID_TOPIC_EXCEPTION", `"ex_ists"`)
		if strings.HasSuffix(t.Name(), "/spool") {
			// kfake does not check the characters of a name; Spool
			// refuses as Kafka does, with a message saying why.
			status, body, hdr = topicsPost(t, ui+"topics", url.Values{"name": {"bad name!"}}, hx...)
			wantProblem(t, "create with an invalid name", status, body, hdr, http.StatusBadRequest, "INVALID_TOPIC_EXCEPTION", "bad name!")
		}
		status, body, hdr = topicsPost(t, ui+"topics", url.Values{"name": {" "}}, hx...)
		wantProblem(t, "create without a name", status, body, hdr, http.StatusBadRequest, "needs a name")
		status, body, hdr = topicsPost(t, ui+"topics", url.Values{"name": {"p"}, "partitions": {"zero"}}, hx...)
		wantProblem(t, "create with bad partitions", status, body, hdr, http.StatusBadRequest, `partitions "zero"`)
		status, body, hdr = topicsPost(t, ui+"topics", url.Values{"name": {"p"}, "configs": {"retention.ms"}}, hx...)
		wantProblem(t, "create with a bad configs line", status, body, hdr, http.StatusBadRequest, "line 1", "name=value")

		// A topic that does not exist: 404, as the error page on a page
		// load and as a problem to an action.
		status, body = get(t, ui+"topics/nope")
		if status != http.StatusNotFound || !strings.Contains(body, "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(body, "<html") {
			t.Fatalf("page of a missing topic: %d %s", status, body)
		}
		status, body, hdr = topicsPost(t, ui+"topics/nope/configs", url.Values{"name": {"retention.ms"}, "value": {"1000"}}, hx...)
		wantProblem(t, "alter a missing topic", status, body, hdr, http.StatusNotFound, "UNKNOWN_TOPIC_OR_PARTITION", `"nope"`)
		status, body, hdr = topicsPost(t, ui+"topics/nope/delete", url.Values{"confirm": {"nope"}}, hx...)
		wantProblem(t, "delete a missing topic", status, body, hdr, http.StatusNotFound, "UNKNOWN_TOPIC_OR_PARTITION")

		status, body, hdr = topicsPost(t, ui+"topics/exists/configs", url.Values{"name": {"retention.ms"}, "op": {"append"}}, hx...)
		wantProblem(t, "alter with an unknown op", status, body, hdr, http.StatusBadRequest, `op "append"`)
		if strings.HasSuffix(t.Name(), "/spool") {
			// kfake stores any config name and value; Spool validates
			// them as Kafka does and says what is wrong.
			status, body, hdr = topicsPost(t, ui+"topics/exists/configs", url.Values{"name": {"retention.ms"}, "value": {"a week"}}, hx...)
			wantProblem(t, "alter with an invalid value", status, body, hdr, http.StatusBadRequest, "INVALID_CONFIG", "retention.ms", `"a week"`)
			status, body, hdr = topicsPost(t, ui+"topics/exists/configs", url.Values{"name": {"no.such.config"}, "value": {"1"}}, hx...)
			wantProblem(t, "alter an unknown config", status, body, hdr, http.StatusBadRequest, "INVALID_CONFIG", "no.such.config")
			status, body, hdr = topicsPost(t, ui+"topics", url.Values{"name": {"p"}, "configs": {"cleanup.policy=sometimes"}}, hx...)
			wantProblem(t, "create with an invalid config", status, body, hdr, http.StatusBadRequest, "INVALID_CONFIG", "sometimes")
		}
	})
}

// rowOf returns the <tr> of body holding marker.
func rowOf(t testing.TB, body, marker string) string {
	t.Helper()
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no %s in the page", marker)
	}
	j := strings.Index(body[i:], "</tr>")
	if j < 0 {
		t.Fatalf("no end of the row of %s", marker)
	}
	return body[i : i+j]
}

// cell returns the text of the row's cell of class class.
func cell(row, class string) string {
	_, after, ok := strings.Cut(row, `class="n `+class+`">`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, "<")
	return v
}

func topicExists(t testing.TB, addrs []string, topic string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A metadata request of its own: kadm's Metadata answers from the
	// client's cache.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0
}

func TestTopicsReadOnly(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "kept", 1)
		_, base := startConsole(t, addrs, console.Config{ReadOnly: true})
		ui := base + "/ui/"
		hx := []string{"HX-Request", "true"}
		for _, tc := range []struct {
			what, path string
			form       url.Values
		}{
			{"create", "topics", url.Values{"name": {"new"}}},
			{"delete", "topics/kept/delete", url.Values{"confirm": {"kept"}}},
			{"alter configs", "topics/kept/configs", url.Values{"name": {"retention.ms"}, "value": {"1000"}}},
			{"add partitions", "topics/kept/partitions", url.Values{"count": {"4"}}},
		} {
			status, body, hdr := topicsPost(t, ui+tc.path, tc.form, hx...)
			wantProblem(t, tc.what+" in read-only mode", status, body, hdr, http.StatusForbidden, "read-only")
		}
		if !topicExists(t, addrs, "kept") || topicExists(t, addrs, "new") {
			t.Fatal("a read-only console changed the topics")
		}
		if v, src := topicConfig(t, adminClient(t, addrs), "kept", "retention.ms"); src == kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("a read-only console set retention.ms to %s", v)
		}
		// The pages offer no forms that would be refused.
		_, body := get(t, ui+"topics")
		if strings.Contains(body, `id="create-topic"`) || !strings.Contains(body, "read-only") {
			t.Error("the read-only list offers the create form")
		}
		_, body = get(t, ui+"topics/kept")
		if strings.Contains(body, `id="delete-topic"`) || strings.Contains(body, `class="cfg"`) || strings.Contains(body, `id="add-partitions"`) || !strings.Contains(body, `data-config="retention.ms"`) {
			t.Error("the read-only topic page offers delete or edit forms, or hides the configs")
		}
	})
}

func TestTopicsACLs(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "open", 1)
		kafkatest.CreateTopic(t, addrs, "secret", 1)
		topic := kmsg.ACLResourceTypeTopic
		az := aclAuthorizer(t,
			allow("ann", topic, "open", kmsg.ACLOperationDescribe),
			allow("ann", topic, "ann.new", kmsg.ACLOperationCreate),
			allow("cid", kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationCreate),
			allow("dee", topic, "open", kmsg.ACLOperationDescribe),
			allow("dee", topic, "open", kmsg.ACLOperationDescribeConfigs),
			allow("dee", topic, "open", kmsg.ACLOperationAlterConfigs),
			allow("dee", topic, "open", kmsg.ACLOperationDelete),
		)
		_, base := startConsole(t, addrs, console.Config{Authorizer: az})
		ui := base + "/ui/"
		as := func(user string) []string { return []string{"HX-Request", "true", "Authorization", "Bearer " + user} }

		// The list shows what Describe grants, and configs only with
		// DescribeConfigs.
		_, body := get(t, ui+"topics", "Authorization", "Bearer ann")
		if !strings.Contains(body, `data-topic="open"`) || strings.Contains(body, `data-topic="secret"`) {
			t.Fatalf("ann's list: %s", body)
		}
		if !strings.Contains(rowOf(t, body, `data-topic="open"`), "not visible") {
			t.Error("ann sees the configs of open without DescribeConfigs")
		}
		status, body := get(t, ui+"topics/secret", "Authorization", "Bearer ann", "Accept", "application/json")
		if status != http.StatusForbidden || !strings.Contains(body, "DESCRIBE") || !strings.Contains(body, `\"secret\"`) {
			t.Fatalf("ann's view of secret: %d %s", status, body)
		}
		_, body = get(t, ui+"topics/open", "Authorization", "Bearer ann")
		if strings.Contains(body, `id="configs-table"`) || !strings.Contains(body, "DESCRIBE_CONFIGS") || strings.Contains(body, `id="delete-topic"`) {
			t.Errorf("ann's page of open shows configs or the delete form: %s", body)
		}

		// Create: CREATE on the topic or on the cluster.
		status, body, hdr := topicsPost(t, ui+"topics", url.Values{"name": {"ann.other"}}, as("ann")...)
		wantProblem(t, "ann creates ann.other", status, body, hdr, http.StatusForbidden, "User:ann", "CREATE", `"ann.other"`)
		if status, body, _ := topicsPost(t, ui+"topics", url.Values{"name": {"ann.new"}}, as("ann")...); status != http.StatusNoContent {
			t.Fatalf("ann creates ann.new: %d %s", status, body)
		}
		if status, body, _ := topicsPost(t, ui+"topics", url.Values{"name": {"cid.any"}}, as("cid")...); status != http.StatusNoContent {
			t.Fatalf("cid creates with CREATE on the cluster: %d %s", status, body)
		}

		// Delete and alter need their own grants.
		status, body, hdr = topicsPost(t, ui+"topics/open/delete", url.Values{"confirm": {"open"}}, as("ann")...)
		wantProblem(t, "ann deletes open", status, body, hdr, http.StatusForbidden, "User:ann", "DELETE", `"open"`)
		status, body, hdr = topicsPost(t, ui+"topics/open/configs", url.Values{"name": {"retention.ms"}, "value": {"1000"}}, as("ann")...)
		wantProblem(t, "ann alters open", status, body, hdr, http.StatusForbidden, "User:ann", "ALTER_CONFIGS", `"open"`)
		status, body, hdr = topicsPost(t, ui+"topics/open/partitions", url.Values{"count": {"3"}}, as("dee")...)
		wantProblem(t, "dee adds partitions without ALTER", status, body, hdr, http.StatusForbidden, "User:dee", "ALTER", `"open"`)
		if !topicExists(t, addrs, "open") {
			t.Fatal("a refused delete deleted open")
		}
		_, body = get(t, ui+"topics/open", "Authorization", "Bearer dee")
		if !strings.Contains(body, `id="configs-table"`) || !strings.Contains(body, `class="cfg"`) || !strings.Contains(body, `id="delete-topic"`) {
			t.Errorf("dee's page of open lacks the configs or the forms")
		}
		if status, body, _ := topicsPost(t, ui+"topics/open/configs", url.Values{"name": {"retention.ms"}, "value": {"1000"}}, as("dee")...); status != http.StatusOK {
			t.Fatalf("dee alters open: %d %s", status, body)
		}
		if status, body, _ := topicsPost(t, ui+"topics/open/delete", url.Values{"confirm": {"open"}}, as("dee")...); status != http.StatusNoContent {
			t.Fatalf("dee deletes open: %d %s", status, body)
		}
	})
}
