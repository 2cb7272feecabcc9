package console_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// msgBase is the timestamp of the first test record; record i is i
// seconds later.
var msgBase = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// msgProduceNumbered produces n records to topic: record i has key k-i,
// timestamp msgBase+i s, JSON value {"n":i,"note":"number i"}, and the
// headers ce_type (order.placed for even i, order.paid for odd) and
// ce_id e-i; it goes to partition i%partitions.
func msgProduceNumbered(t testing.TB, addrs []string, topic string, n, partitions int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := range n {
		typ := "order.placed"
		if i%2 == 1 {
			typ = "order.paid"
		}
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Key: []byte(fmt.Sprintf("k-%d", i)),
			Value: []byte(fmt.Sprintf(`{"n":%d,"note":"number %d"}`, i, i)), Timestamp: msgBase.Add(time.Duration(i) * time.Second),
			Headers: []kgo.RecordHeader{{Key: "ce_type", Value: []byte(typ)}, {Key: "ce_id", Value: []byte(fmt.Sprintf("e-%d", i))},
				{Key: "ce_source", Value: []byte("/shop")}, {Key: "ce_specversion", Value: []byte("1.0")}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

var msgRowRE = regexp.MustCompile(`<tr id="m-(\d+)-(\d+)" class="msg-row">`)
var msgKeyRE = regexp.MustCompile(`<td class="msg-key"><code>k-(\d+)</code>`)

// msgShownKeys are the numbers of the records a messages page shows, in
// order.
func msgShownKeys(body string) []int {
	var out []int
	for _, m := range msgKeyRE.FindAllStringSubmatch(body, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		out = append(out, n)
	}
	return out
}

var msgOlderRE = regexp.MustCompile(`<a href="([^"]+)" id="page-older"`)
var msgNewerRE = regexp.MustCompile(`<a href="([^"]+)" id="page-newer"`)

func msgLink(re *regexp.Regexp, body string) string {
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

func msgSeq(from, to, step int) []int {
	var out []int
	for i := from; (step > 0 && i < to) || (step < 0 && i > to); i += step {
		out = append(out, i)
	}
	return out
}

func msgSameInts(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestMessagesBrowse: the newest page and its older pages show every
// record once, newest first; the oldest, an offset and a time start where
// they say; one partition shows only its records.
func TestMessagesBrowse(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 3)
		msgProduceNumbered(t, addrs, "orders", 25, 3)
		_, u := startConsole(t, addrs, console.Config{})
		page := u + "/ui/topics/orders/messages"

		var all []int
		next := page + "?limit=10"
		for pages := 0; next != ""; pages++ {
			if pages > 5 {
				t.Fatalf("older pages do not end: %v", all)
			}
			status, body := get(t, next)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", next, status, body)
			}
			all = append(all, msgShownKeys(body)...)
			if older := msgLink(msgOlderRE, body); older != "" {
				next = u + older
			} else {
				next = ""
			}
		}
		if !msgSameInts(all, msgSeq(24, -1, -1)) {
			t.Fatalf("newest first through the older pages: %v", all)
		}

		status, body := get(t, page+"?start=oldest&limit=10")
		if got := msgShownKeys(body); status != http.StatusOK || !msgSameInts(got, msgSeq(0, 10, 1)) {
			t.Fatalf("oldest: %d %v", status, got)
		}
		newer := msgLink(msgNewerRE, body)
		if newer == "" {
			t.Fatal("the oldest page has no Newer link")
		}
		if _, body := get(t, u+newer); !msgSameInts(msgShownKeys(body), msgSeq(10, 20, 1)) {
			t.Fatalf("the page after the oldest: %v", msgShownKeys(body))
		}

		// Partition 1 holds 1, 4, 7, ...: offset 3 is record 10.
		if _, body := get(t, page+"?partition=1&start=offset&offset=3&limit=3"); !msgSameInts(msgShownKeys(body), []int{10, 13, 16}) {
			t.Fatalf("partition 1 from offset 3: %v", msgShownKeys(body))
		}
		at := msgBase.Add(20 * time.Second).Format(time.RFC3339)
		if _, body := get(t, page+"?start=time&limit=3&time="+url.QueryEscape(at)); !msgSameInts(msgShownKeys(body), []int{20, 21, 22}) {
			t.Fatalf("from %s: %v", at, msgShownKeys(body))
		}
		if _, body := get(t, page+"?partition=2&limit=50"); !msgSameInts(msgShownKeys(body), msgSeq(23, 0, -3)) {
			t.Fatalf("partition 2: %v", msgShownKeys(body))
		}

		// The decoded views: the envelope as fields, the JSON value
		// pretty-printed, every header, the record as JSON to copy.
		_, body = get(t, page+"?partition=0&start=offset&offset=0&limit=1")
		for _, want := range []string{`<dt>ce_type</dt><dd>order.placed</dd>`, `<dt>ce_id</dt><dd>e-0</dd>`,
			"{\n  &#34;n&#34;: 0,", `<code>ce_source</code>`, `id="m-0-0-json">{&#34;topic&#34;:&#34;orders&#34;,&#34;partition&#34;:0,&#34;offset&#34;:0`} {
			if !strings.Contains(body, want) {
				t.Errorf("record 0's view lacks %s", want)
			}
		}
	})
}

// msgScan reads a scan stream to its end and returns the last progress
// event and the done event.
func msgScan(t *testing.T, url string) (progress, done string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scan %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var name string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name, data = strings.TrimPrefix(line, "event: "), strings.Builder{}
		case strings.HasPrefix(line, "data: "):
			data.WriteString(strings.TrimPrefix(line, "data: ") + "\n")
		case line == "":
			switch name {
			case "progress":
				progress = data.String()
			case "done":
				return progress, data.String()
			}
		}
	}
	t.Fatalf("scan %s ended without a done event (%v)", url, sc.Err())
	return "", ""
}

// TestMessagesScanFilters: without the archive, the page streams a broker
// msgScan; every filter selects what it says, the progress counts the
// records read, and a budget smaller than the topic stops the scan with
// a message and an Older link that continues it.
func TestMessagesScanFilters(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 2)
		msgProduceNumbered(t, addrs, "orders", 40, 2)
		_, u := startConsole(t, addrs, console.Config{})
		status, body := get(t, u+"/ui/topics/orders/messages?key=k-7")
		if status != http.StatusOK || !strings.Contains(body, `sse-connect="/ui/topics/orders/messages/scan?key=k-7"`) {
			t.Fatalf("a filtered page without the archive opens the scan stream: %d %s", status, body)
		}
		scanURL := u + "/ui/topics/orders/messages/scan?"
		at := func(i int) string { return msgBase.Add(time.Duration(i) * time.Second).Format(time.RFC3339) }
		for _, c := range []struct {
			query string
			want  []int
		}{
			{"key=k-7", []int{7}},
			{"key=k-3&key_match=contains", []int{39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 3}},
			{"header=ce_id%3De-12", []int{12}},
			{"header=ce_type%3Dorder.paid&limit=3", []int{39, 37, 35}},
			{"type=order.placed&from=" + url.QueryEscape(at(30)), []int{38, 36, 34, 32, 30}},
			{"type=order.paid&from=" + url.QueryEscape(at(4)) + "&to=" + url.QueryEscape(at(9)), []int{7, 5}},
			{"q=number+2&start=oldest&limit=4", []int{2, 20, 21, 22}},
			{"q=number+1&partition=1&limit=20", []int{19, 17, 15, 13, 11, 1}},
			{"key=nope", nil},
		} {
			progress, done := msgScan(t, scanURL+c.query)
			if got := msgShownKeys(done); !msgSameInts(got, c.want) {
				t.Errorf("%s: shown %v, want %v", c.query, got, c.want)
			}
			if !strings.Contains(progress, "Scan finished") {
				t.Errorf("%s: last progress %q", c.query, progress)
			}
		}
		progress, _ := msgScan(t, scanURL+"key=k-7")
		if !strings.Contains(progress, `<span id="scan-scanned">40</span> of 40 records read, <span id="scan-matches">1</span>`) {
			t.Errorf("progress of a whole-topic scan: %s", progress)
		}

		// A budget of 10 records: the newest 10 (5 per partition) are
		// scanned, record 3 is not among them; the page says so, and
		// Older continues below what was scanned.
		_, done := msgScan(t, scanURL+"key=k-3&budget=10")
		if !strings.Contains(done, `id="msg-budget"`) || !strings.Contains(done, "Scanned 10 of 40 records, stopped at the budget") || len(msgShownKeys(done)) != 0 {
			t.Fatalf("a scan stopped at its budget: %s", done)
		}
		older := msgLink(msgOlderRE, done)
		if !strings.Contains(older, "cursor=older%3A0%4015%2C1%4015") {
			t.Fatalf("older link of the budget-stopped scan: %q", older)
		}
		var found []int
		for i := 0; i < 5 && older != ""; i++ {
			_, done = msgScan(t, u+strings.Replace(older, "/messages?", "/messages/scan?", 1))
			found = append(found, msgShownKeys(done)...)
			older = msgLink(msgOlderRE, done)
		}
		if !msgSameInts(found, []int{3}) {
			t.Fatalf("following Older after the budget found %v, want record 3", found)
		}
	})
}

// TestMessagesExport: the export holds every match (not one page) as
// JSON lines the lookback API's shape, and says when the budget cut it.
func TestMessagesExport(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 2)
		msgProduceNumbered(t, addrs, "orders", 30, 2)
		_, u := startConsole(t, addrs, console.Config{})
		resp, err := http.Get(u + "/ui/topics/orders/messages/export?type=order.paid&limit=5")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" ||
			resp.Header.Get("Content-Disposition") != `attachment; filename="orders-messages.ndjson"` {
			t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 15 {
			t.Fatalf("export of the 15 order.paid records (the page size does not apply): %d lines\n%s", len(lines), b)
		}
		seen := map[string]bool{}
		for _, l := range lines {
			var rec struct {
				Topic     string
				Partition int32
				Offset    int64
				Key       *string
				Value     *string
				Headers   []struct{ Key, Value string }
				Timestamp time.Time
			}
			if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Key == nil || rec.Value == nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if len(rec.Headers) != 4 || rec.Headers[0].Key != "ce_type" || rec.Headers[0].Value != "order.paid" || rec.Topic != "orders" {
				t.Fatalf("line %q", l)
			}
			seen[*rec.Key] = true
		}
		for i := 1; i < 30; i += 2 {
			if !seen[fmt.Sprintf("k-%d", i)] {
				t.Errorf("k-%d missing from the export", i)
			}
		}

		_, body := get(t, u+"/ui/topics/orders/messages/export?budget=8")
		lines = strings.Split(strings.TrimSpace(body), "\n")
		var end struct {
			Truncated bool
			Reason    string
			Scanned   int64
			Of        int64
			Exported  int64
			Next      string
		}
		if len(lines) != 9 || json.Unmarshal([]byte(lines[8]), &end) != nil || !end.Truncated || end.Scanned != 8 || end.Of != 30 ||
			end.Exported != 8 || !strings.Contains(end.Reason, "stopped at the budget of 8") || !strings.Contains(end.Next, "cursor=older") {
			t.Fatalf("an export cut by its budget ends with a line saying so: %d lines, last %s", len(lines), lines[len(lines)-1])
		}
	})
}

// TestMessagesProduce: a record produced through the page has the key,
// headers and value of the form, in the partition asked for; bad input
// and the broker's refusal (a record too large) come back as problems.
func TestMessagesProduce(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 3)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		maxBytes := "2000"
		if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &maxBytes}, "small"); err != nil {
			t.Fatal(err)
		}
		_, u := startConsole(t, addrs, console.Config{})
		page := u + "/ui/topics/orders/messages"
		status, body := postForm(t, page, url.Values{"key": {"order-1"}, "partition": {"2"}, "encoding": {"json"},
			"value": {`{"total": 42}`}, "headers": {"ce_type=order.placed\r\ncorrelation_id=c-1\n"}}, "Accept", "application/json")
		var out struct {
			Partition int32
			Offset    int64
			URL       string
		}
		if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.Partition != 2 || out.Offset != 0 {
			t.Fatalf("produce: %d %s", status, body)
		}
		status, body = postForm(t, page, url.Values{"encoding": {"base64"}, "value": {"AAEC/w=="}})
		if status != http.StatusOK || !strings.Contains(body, `id="produced-offset"`) {
			t.Fatalf("produce bytes: %d %s", status, body)
		}
		recs := kafkatest.ReadAll(t, addrs, "orders")
		if len(recs) != 2 {
			t.Fatalf("%d records in orders, want 2", len(recs))
		}
		for _, r := range recs {
			switch {
			case string(r.Key) == "order-1":
				if r.Partition != 2 || string(r.Value) != `{"total": 42}` || len(r.Headers) != 2 ||
					r.Headers[0].Key != "ce_type" || string(r.Headers[0].Value) != "order.placed" || string(r.Headers[1].Value) != "c-1" {
					t.Errorf("the JSON record: %+v", r)
				}
			case r.Key == nil:
				if string(r.Value) != "\x00\x01\x02\xff" {
					t.Errorf("the base64 record's value %q", r.Value)
				}
			default:
				t.Errorf("unexpected record %+v", r)
			}
		}
		// The page finds the record it links to.
		if _, body := get(t, u+out.URL); !strings.Contains(body, `<code>order-1</code>`) {
			t.Errorf("the produced record's link does not show it")
		}

		for _, c := range []struct {
			form   url.Values
			status int
			detail string
		}{
			{url.Values{"encoding": {"json"}, "value": {"{nope"}}, 400, "the value is not JSON"},
			{url.Values{"encoding": {"base64"}, "value": {"***"}}, 400, "the value is not base64"},
			{url.Values{"partition": {"7"}, "value": {"x"}}, 400, "has 3 partitions"},
			{url.Values{"partition": {"-1"}, "value": {"x"}}, 400, "want a partition number"},
			{url.Values{"headers": {"no-equals"}, "value": {"x"}}, 400, "want NAME=VALUE"},
			{url.Values{"encoding": {"yaml"}}, 400, "encoding"},
		} {
			status, body := postForm(t, page, c.form, "HX-Request", "true")
			if status != c.status || !strings.Contains(body, c.detail) || !strings.Contains(body, `"status"`) {
				t.Errorf("produce %v: %d %s, want %d with %q", c.form, status, body, c.status, c.detail)
			}
		}
		status, body = postForm(t, u+"/ui/topics/small/messages", url.Values{"value": {msgIncompressible(5000)}}, "HX-Request", "true")
		if status != http.StatusBadRequest || !strings.Contains(body, "MESSAGE_TOO_LARGE") {
			t.Errorf("a record larger than the topic's max.message.bytes: %d %s", status, body)
		}
		if n := len(kafkatest.ReadAll(t, addrs, "orders")); n != 2 {
			t.Errorf("refused produces wrote records: %d in orders", n)
		}
	})
}

// TestMessagesFailures: an unknown topic is a 404, a bad offset, time,
// partition or cursor a 400, produce in read-only mode a 403, and the
// ACLs refuse browsing without Read, producing without Write and list
// only the topics the principal may describe.
func TestMessagesFailures(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 2)
		kafkatest.CreateTopic(t, addrs, "secret", 1)
		_, u := startConsole(t, addrs, console.Config{})
		for _, c := range []struct {
			path   string
			status int
			detail string
		}{
			{"topics/nope/messages", 404, `topic &#34;nope&#34; does not exist`},
			{"topics/nope/messages/scan?key=x", 404, `topic \"nope\" does not exist`},
			{"topics/nope/messages/export", 404, `topic &#34;nope&#34; does not exist`},
			{"topics/orders/messages?start=offset&offset=-3", 400, "want a non-negative record offset"},
			{"topics/orders/messages?start=offset&offset=abc", 400, "want a non-negative record offset"},
			{"topics/orders/messages?start=time&time=yesterday", 400, "want RFC 3339"},
			{"topics/orders/messages?from=2026-13-01", 400, "want RFC 3339"},
			{"topics/orders/messages?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", 400, "is empty"},
			{"topics/orders/messages?partition=9", 400, "has 2 partitions"},
			{"topics/orders/messages?start=sideways", 400, "want newest, oldest, offset or time"},
			{"topics/orders/messages?cursor=bogus", 400, "cursor"},
			{"topics/orders/messages?limit=100000", 400, "page size"},
			{"topics/orders/messages?colour=red", 400, "unknown parameter"},
			{"topics/orders/messages/scan?start=offset", 400, "want a non-negative record offset"},
		} {
			status, body := get(t, u+"/ui/"+c.path)
			if status != c.status || !strings.Contains(body, c.detail) {
				t.Errorf("GET %s: %d, want %d with %q\n%s", c.path, status, c.status, c.detail, body)
			}
		}
		status, body := postForm(t, u+"/ui/topics/nope/messages", url.Values{"value": {"x"}}, "HX-Request", "true")
		if status != http.StatusNotFound || !strings.Contains(body, "does not exist") {
			t.Errorf("produce to an unknown topic: %d %s", status, body)
		}

		_, ro := startConsole(t, addrs, console.Config{ReadOnly: true})
		status, body = postForm(t, ro+"/ui/topics/orders/messages", url.Values{"value": {"x"}}, "HX-Request", "true")
		if status != http.StatusForbidden || !strings.Contains(body, "read-only") {
			t.Errorf("produce in read-only mode: %d %s", status, body)
		}
		if status, body := get(t, ro+"/ui/topics/orders/messages"); status != http.StatusOK || !strings.Contains(body, `id="produce-off"`) || strings.Contains(body, `id="produce-form"`) {
			t.Errorf("the read-only page offers produce: %d", status)
		}

		_, acl := startConsole(t, addrs, console.Config{Authorizer: aclAuthorizer(t,
			allow("reader", kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationRead),
			allow("reader", kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationDescribe),
			allow("writer", kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationWrite))})
		as := func(user string) []string { return []string{"Authorization", "Bearer " + user} }
		for _, p := range []string{"topics/orders/messages", "topics/orders/messages/scan?key=x", "topics/orders/messages/export"} {
			if status, body := get(t, acl+"/ui/"+p, as("writer")...); status != http.StatusForbidden || !strings.Contains(body, "may not READ") {
				t.Errorf("GET %s without Read: %d %s", p, status, body)
			}
		}
		if status, body := get(t, acl+"/ui/topics/orders/messages", as("reader")...); status != http.StatusOK || !strings.Contains(body, `id="produce-off"`) {
			t.Errorf("reader: %d, want the page without produce", status)
		}
		status, body = postForm(t, acl+"/ui/topics/orders/messages", url.Values{"value": {"x"}}, append(as("reader"), "HX-Request", "true")...)
		if status != http.StatusForbidden || !strings.Contains(body, "may not WRITE") {
			t.Errorf("produce without Write: %d %s", status, body)
		}
		if status, body := postForm(t, acl+"/ui/topics/orders/messages", url.Values{"value": {"x"}}, append(as("writer"), "Accept", "application/json")...); status != http.StatusOK {
			t.Errorf("produce with Write: %d %s", status, body)
		}
		status, body = get(t, acl+"/ui/messages", as("reader")...)
		if status != http.StatusOK || !strings.Contains(body, `/ui/topics/orders/messages"`) || strings.Contains(body, "secret") {
			t.Errorf("the topic picker lists what reader may describe: %d %s", status, body)
		}
	})
}

// msgIncompressible is n bytes of hex text that no codec shrinks much.
func msgIncompressible(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestMessagesArchive: with the lookback archive on, filters are answered
// from its index (no scan stream), the filters it does not index
// (partition, header) are applied to its answers, its cursor pages, the
// export reads it, and source=broker still scans the broker.
func TestMessagesArchive(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 2)
		svc, st := startLookback(t, addrs)
		msgProduceNumbered(t, addrs, "orders", 20, 2)
		waitArchived(t, st, 20)
		_, u := startConsole(t, addrs, console.Config{Lookback: svc.Handler()})
		page := u + "/ui/topics/orders/messages?"
		for _, c := range []struct {
			query string
			want  []int
		}{
			{"key=k-7", []int{7}},
			{"q=number+1&partition=1", []int{19, 17, 15, 13, 11, 1}},
			{"header=ce_id%3De-12", []int{12}},
			{"key=k-1&key_match=contains&start=oldest", []int{1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
			{"type=order.paid&from=" + url.QueryEscape(msgBase.Add(5*time.Second).Format(time.RFC3339)) + "&to=" +
				url.QueryEscape(msgBase.Add(10*time.Second).Format(time.RFC3339)), []int{9, 7, 5}},
		} {
			status, body := get(t, page+c.query)
			if status != http.StatusOK || !strings.Contains(body, `data-source="lookback"`) || strings.Contains(body, "sse-connect") {
				t.Fatalf("%s: %d, want an answer from the archive\n%s", c.query, status, body)
			}
			if got := msgShownKeys(body); !msgSameInts(got, c.want) {
				t.Errorf("%s: shown %v, want %v", c.query, got, c.want)
			}
		}
		_, body := get(t, page+"type=order.paid&limit=3")
		older := msgLink(msgOlderRE, body)
		if !msgSameInts(msgShownKeys(body), []int{19, 17, 15}) || !strings.Contains(older, "cursor=lb%3A") {
			t.Fatalf("first page %v, older %q", msgShownKeys(body), older)
		}
		if _, body := get(t, u+older); !msgSameInts(msgShownKeys(body), []int{13, 11, 9}) {
			t.Fatalf("the archive's next page: %v", msgShownKeys(body))
		}
		if _, body := get(t, page+"key=k-7&source=broker"); !strings.Contains(body, "sse-connect") {
			t.Fatal("source=broker does not scan the broker")
		}
		_, body = get(t, u+"/ui/topics/orders/messages/export?type=order.placed")
		if n := len(strings.Split(strings.TrimSpace(body), "\n")); n != 10 || !strings.Contains(body, `"key":"k-18"`) {
			t.Fatalf("export from the archive: %d lines\n%s", n, body)
		}
		// A topic the archive does not hold (startLookback excludes
		// *.debug): the filter scans the broker rather than answering
		// "no match", and so does the export.
		kafkatest.CreateTopic(t, addrs, "orders.debug", 1)
		msgProduceNumbered(t, addrs, "orders.debug", 5, 1)
		_, body = get(t, u+"/ui/topics/orders.debug/messages?key=k-1")
		if !strings.Contains(body, `id="msg-not-archived"`) || !strings.Contains(body, `sse-connect="/ui/topics/orders.debug/messages/scan?key=k-1&amp;source=broker"`) {
			t.Fatalf("a topic the archive does not hold:\n%s", body)
		}
		_, body = get(t, u+"/ui/topics/orders.debug/messages/export?key=k-1")
		if !strings.Contains(body, `"key":"k-1"`) {
			t.Fatalf("export of a topic the archive does not hold: %s", body)
		}
		_, body = get(t, page+"key=k-7")
		if !strings.Contains(body, `id="msg-archived-up-to" datetime="`+msgBase.Add(19*time.Second).Format(time.RFC3339Nano)) {
			t.Errorf("the archive's answer does not say how far it holds the topic")
		}
	})
}

// TestMessagesLargeValue: a value larger than 256 KiB is shown truncated
// and not carried whole for the copy buttons, so a page of large records
// stays small; the export has it whole.
func TestMessagesLargeValue(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "blobs", 1)
		big := msgIncompressible(600 << 10)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "blobs", Key: []byte("big"), Value: []byte(big)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		_, u := startConsole(t, addrs, console.Config{})
		status, body := get(t, u+"/ui/topics/blobs/messages")
		if status != http.StatusOK || !strings.Contains(body, "larger than 256 KiB") || strings.Contains(body, `id="m-0-0-json"`) || len(body) > 400<<10 {
			t.Fatalf("a page with a 600 KiB value: %d, %d bytes", status, len(body))
		}
		_, export := get(t, u+"/ui/topics/blobs/messages/export")
		if !strings.Contains(export, big) {
			t.Fatalf("the export does not hold the whole value (%d bytes)", len(export))
		}
	})
}
