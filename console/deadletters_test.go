package console_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// dlqPost posts form to url as JSON-accepting client; header is name,
// value pairs.
func dlqPost(t testing.TB, u string, form url.Values, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// waitRedrive polls the status URL until the redrive is done.
func waitRedrive(t testing.TB, base, loc string, header ...string) console.RedriveReport {
	t.Helper()
	var rep console.RedriveReport
	kafkatest.Eventually(t, 60*time.Second, "the redrive to finish", func() bool {
		status, body := get(t, base+loc, append([]string{"Accept", "application/json"}, header...)...)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", loc, status, body)
		}
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("status: %v: %s", err, body)
		}
		return rep.Done()
	})
	return rep
}

// springDeadLetter is a record as Spring Kafka's DeadLetterPublishingRecoverer
// writes it: binary partition and offset.
func springDeadLetter(topic, orig string, partition int32, offset int64) *kgo.Record {
	p := binary.BigEndian.AppendUint32(nil, uint32(partition))
	o := binary.BigEndian.AppendUint64(nil, uint64(offset))
	return &kgo.Record{Topic: topic, Key: []byte("s1"), Value: []byte(`{"id":1}`), Headers: []kgo.RecordHeader{
		{Key: "kafka_dlt-exception-fqcn", Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException")},
		{Key: "kafka_dlt-exception-cause-fqcn", Value: []byte("java.lang.IllegalStateException")},
		{Key: "kafka_dlt-exception-message", Value: []byte("Listener failed; nested exception is bad state")},
		{Key: "kafka_dlt-original-topic", Value: []byte(orig)},
		{Key: "kafka_dlt-original-partition", Value: p},
		{Key: "kafka_dlt-original-offset", Value: o},
		{Key: "kafka_dlt-original-consumer-group", Value: []byte("spring-app")},
	}}
}

func dlqProduce(t testing.TB, addrs []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func TestDeadLetterPages(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "pay", 2)
		kafkatest.CreateTopic(t, addrs, "pay.dlq", 2)
		kafkatest.CreateTopic(t, addrs, "legacy-failures", 1) // a DLQ by its headers only
		kafkatest.CreateTopic(t, addrs, "plain", 1)
		produceDLQ(t, addrs, "pay.dlq", "pay", 30, 4, agent.ReasonRetriesExhausted, agent.ReasonDeadLetter, agent.ReasonMalformed)
		dlqProduce(t, addrs, springDeadLetter("legacy-failures", "pay", 3, 77),
			&kgo.Record{Topic: "plain", Value: []byte("just data")})
		_, u := startConsole(t, addrs, console.Config{})

		status, body := get(t, u+"/ui/deadletters")
		if status != http.StatusOK {
			t.Fatalf("list: %d %s", status, body)
		}
		for _, want := range []string{`href="/ui/deadletters/pay.dlq"`, `href="/ui/deadletters/legacy-failures"`, "headers (spring)", `dlq-depth">30<`, `aria-current="page">Dead letters`} {
			if !strings.Contains(body, want) {
				t.Errorf("list lacks %q", want)
			}
		}
		for _, not := range []string{`/ui/deadletters/plain"`, `/ui/deadletters/pay"`} {
			if strings.Contains(body, not) {
				t.Errorf("list shows a topic that is no dead-letter topic: %s", not)
			}
		}

		status, body = get(t, u+"/ui/deadletters/pay.dlq")
		if status != http.StatusOK {
			t.Fatalf("topic page: %d %s", status, body)
		}
		for _, want := range []string{`id="dlq-depth">30<`, `id="dlq-matched">30<`, "?reason=retries-exhausted", "dlq_original_offset", "boom malformed #"} {
			if !strings.Contains(body, want) {
				t.Errorf("topic page lacks %q", want)
			}
		}
		status, body = get(t, u+"/ui/deadletters/pay.dlq?reason=malformed&key=k1")
		// i%3==2 (malformed) and i%4==1 (k1): i = 5, 17, 29.
		if status != http.StatusOK || !strings.Contains(body, `id="dlq-matched">3<`) {
			t.Fatalf("filtered page: %d, want 3 matching: %s", status, body[strings.Index(body, "dlq-matched"):][:40])
		}

		status, body = get(t, u+"/ui/deadletters/legacy-failures")
		for _, want := range []string{"java.lang.IllegalStateException", "Listener failed", "pay 3/77", "spring-app", "kafka_dlt-original-offset", "(77)"} {
			if !strings.Contains(body, want) {
				t.Errorf("Spring dead letter page lacks %q (status %d)", want, status)
			}
		}

		if status, body := get(t, u+"/ui/deadletters/no-such.dlq"); status != http.StatusNotFound || !strings.Contains(body, `no topic \"no-such.dlq\"`) && !strings.Contains(body, "no topic &#34;no-such.dlq&#34;") {
			t.Fatalf("unknown DLQ page: %d %s", status, body)
		}
		if status, _, body := dlqPost(t, u+"/ui/deadletters/no-such.dlq/redrive/plan", nil); status != http.StatusNotFound || !strings.Contains(body, `"status":404`) {
			t.Fatalf("unknown DLQ dry run: %d %s", status, body)
		}
		if status, _, body := dlqPost(t, u+"/ui/deadletters/no-such.dlq/redrive", nil); status != http.StatusNotFound {
			t.Fatalf("unknown DLQ redrive: %d %s", status, body)
		}
		if status, _, body := dlqPost(t, u+"/ui/deadletters/pay.dlq/redrive/plan", url.Values{"rate": {"-1"}}); status != http.StatusBadRequest || !strings.Contains(body, "rate") {
			t.Fatalf("negative rate: %d %s", status, body)
		}
		if status, _, body := dlqPost(t, u+"/ui/deadletters/pay.dlq/redrive/plan", url.Values{"from": {"yesterday"}}); status != http.StatusBadRequest || !strings.Contains(body, "not a time") {
			t.Fatalf("bad time: %d %s", status, body)
		}
		if status, body := get(t, u+"/ui/deadletters/pay.dlq/redrive/nope", "Accept", "application/json"); status != http.StatusNotFound {
			t.Fatalf("unknown redrive: %d %s", status, body)
		}
	})
}

// The redrive actions through HTTP: a dry run, the redrive, its status,
// and a target the broker refuses (reported per record, the DLQ intact).
func TestRedriveHandlers(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "ship", 2)
		kafkatest.CreateTopic(t, addrs, "ship.dlq", 2)
		produceDLQ(t, addrs, "ship.dlq", "ship", 40, 5, agent.ReasonRetriesExhausted, agent.ReasonDeadLetter)
		_, u := startConsole(t, addrs, console.Config{})
		base := u + "/ui/deadletters/ship.dlq/redrive"

		form := url.Values{"reason": {agent.ReasonRetriesExhausted}, "rate": {"0"}}
		status, _, body := dlqPost(t, base+"/plan", form)
		var plan console.RedrivePlan
		if status != http.StatusOK || json.Unmarshal([]byte(body), &plan) != nil || plan.Redrive != 20 || plan.ByTarget["ship"] != 20 {
			t.Fatalf("dry run: %d %s", status, body)
		}
		status, hdr, body := dlqPost(t, base, form)
		if status != http.StatusAccepted || !strings.HasPrefix(hdr.Get("Location"), "/ui/deadletters/ship.dlq/redrive/") {
			t.Fatalf("redrive: %d %v %s", status, hdr, body)
		}
		rep := waitRedrive(t, u, hdr.Get("Location"))
		if rep.Redriven != 20 || rep.Failed != 0 || rep.Skipped != 0 {
			t.Fatalf("report: %+v", rep)
		}
		if got := kafkatest.ReadAll(t, addrs, "ship"); len(got) != 20 {
			t.Fatalf("ship has %d records, want 20", len(got))
		}
		// The page marks them, the next dry run skips them.
		if _, body := get(t, u+"/ui/deadletters/ship.dlq"); !strings.Contains(body, `id="dlq-redriven">20<`) {
			t.Errorf("page does not mark the 20 redriven records")
		}
		if _, _, body := dlqPost(t, base+"/plan", form); !strings.Contains(body, `"already_redriven":20`) || !strings.Contains(body, `"redrive":0`) {
			t.Errorf("second dry run: %s", body)
		}

		// A target that does not exist: every record fails, reported; the DLQ keeps them all.
		form = url.Values{"reason": {agent.ReasonDeadLetter}, "target": {"ship-missing"}, "rate": {"0"}}
		status, _, body = dlqPost(t, base+"/plan", form)
		if status != http.StatusOK || !strings.Contains(body, `"missing_targets":["ship-missing"]`) {
			t.Fatalf("dry run to a missing topic: %d %s", status, body)
		}
		status, hdr, body = dlqPost(t, base, form)
		if status != http.StatusAccepted {
			t.Fatalf("redrive to a missing topic: %d %s", status, body)
		}
		rep = waitRedrive(t, u, hdr.Get("Location"))
		if rep.Redriven != 0 || rep.Failed != 20 || len(rep.Failures) != 20 || !strings.Contains(rep.Failures[0].Error, "does not exist") {
			t.Fatalf("report of a refused target: %+v", rep)
		}
		if dlq := kafkatest.ReadAll(t, addrs, "ship.dlq"); len(dlq) != 40 {
			t.Fatalf("ship.dlq has %d records after the redrives, want 40", len(dlq))
		}
		// The failed redrive marks nothing: the records are still to redrive.
		if _, _, body := dlqPost(t, base+"/plan", form); !strings.Contains(body, `"redrive":20`) {
			t.Errorf("dry run after the failed redrive: %s", body)
		}
	})
}

func TestRedriveReadOnly(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "ro", 1)
		kafkatest.CreateTopic(t, addrs, "ro.dlq", 1)
		produceDLQ(t, addrs, "ro.dlq", "ro", 5, 2, agent.ReasonDeadLetter)
		_, u := startConsole(t, addrs, console.Config{ReadOnly: true})
		if status, _, body := dlqPost(t, u+"/ui/deadletters/ro.dlq/redrive/plan", nil); status != http.StatusOK || !strings.Contains(body, `"redrive":5`) {
			t.Fatalf("read-only dry run: %d %s", status, body)
		}
		status, _, body := dlqPost(t, u+"/ui/deadletters/ro.dlq/redrive", nil)
		if status != http.StatusForbidden || !strings.Contains(body, "read-only") {
			t.Fatalf("read-only redrive: %d %s", status, body)
		}
		if got := kafkatest.ReadAll(t, addrs, "ro"); len(got) != 0 {
			t.Fatalf("read-only redrive produced %d records", len(got))
		}
		if _, body := get(t, u+"/ui/deadletters/ro.dlq"); !strings.Contains(body, "Read-only mode") {
			t.Errorf("the page does not say redrive is refused")
		}
	})
}

// Read on the DLQ and Write on every target are needed.
func TestRedriveACLs(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "acl", 1)
		kafkatest.CreateTopic(t, addrs, "acl-other", 1)
		kafkatest.CreateTopic(t, addrs, "acl.dlq", 1)
		produceDLQ(t, addrs, "acl.dlq", "acl", 6, 2, agent.ReasonDeadLetter)
		topic := kmsg.ACLResourceTypeTopic
		_, u := startConsole(t, addrs, console.Config{Authorizer: aclAuthorizer(t,
			allow("ann", topic, "acl.dlq", kmsg.ACLOperationRead), allow("ann", topic, "acl.dlq", kmsg.ACLOperationDescribe),
			allow("ann", topic, "acl-other", kmsg.ACLOperationWrite),
		)})
		base := u + "/ui/deadletters/acl.dlq"
		for _, path := range []string{"", "/redrive/plan"} {
			var status int
			var body string
			if path == "" {
				status, body = get(t, base, "Authorization", "Bearer bob", "Accept", "application/json")
			} else {
				status, _, body = dlqPost(t, base+path, nil, "Authorization", "Bearer bob")
			}
			if status != http.StatusForbidden || !strings.Contains(body, `may not READ TOPIC \"acl.dlq\"`) {
				t.Fatalf("bob without Read, %q: %d %s", path, status, body)
			}
		}
		if status, body := get(t, u+"/ui/deadletters", "Authorization", "Bearer bob"); status != http.StatusOK || strings.Contains(body, "acl.dlq") {
			t.Fatalf("bob's list shows acl.dlq: %d", status)
		}
		// ann reads the DLQ but may not write its original topic.
		status, _, body := dlqPost(t, base+"/redrive/plan", nil, "Authorization", "Bearer ann")
		if status != http.StatusOK || !strings.Contains(body, `"denied_targets":["acl"]`) {
			t.Fatalf("ann's dry run: %d %s", status, body)
		}
		status, _, body = dlqPost(t, base+"/redrive", nil, "Authorization", "Bearer ann")
		if status != http.StatusForbidden || !strings.Contains(body, `may not WRITE TOPIC \"acl\"`) {
			t.Fatalf("ann's redrive to the original topic: %d %s", status, body)
		}
		status, hdr, body := dlqPost(t, base+"/redrive", url.Values{"target": {"acl-other"}}, "Authorization", "Bearer ann")
		if status != http.StatusAccepted {
			t.Fatalf("ann's redrive to acl-other: %d %s", status, body)
		}
		if rep := waitRedrive(t, u, hdr.Get("Location"), "Authorization", "Bearer ann"); rep.Redriven != 6 {
			t.Fatalf("ann's redrive: %+v", rep)
		}
		if got := kafkatest.ReadAll(t, addrs, "acl"); len(got) != 0 {
			t.Fatalf("the refused redrive produced %d records", len(got))
		}
	})
}

// A slow redrive shows its progress and stops on cancel with an exact
// report: what it redrove is in the target and marked, the rest is not.
func TestRedriveCancel(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "slow", 2)
		kafkatest.CreateTopic(t, addrs, "slow.dlq", 2)
		produceDLQ(t, addrs, "slow.dlq", "slow", 100, 5, agent.ReasonDeadLetter)
		_, u := startConsole(t, addrs, console.Config{})
		base := u + "/ui/deadletters/slow.dlq/redrive"
		// 10/s: the 100 records take 10s, and the cancel comes well
		// before that on a loaded machine too.
		status, hdr, body := dlqPost(t, base, url.Values{"rate": {"10"}})
		if status != http.StatusAccepted {
			t.Fatalf("redrive: %d %s", status, body)
		}
		loc := hdr.Get("Location")
		kafkatest.Eventually(t, 30*time.Second, "progress", func() bool {
			_, body := get(t, u+loc, "Accept", "application/json")
			var rep console.RedriveReport
			json.Unmarshal([]byte(body), &rep)
			return rep.Redriven > 0 && rep.Records == 100
		})
		// The page's fragment while it runs: a progress bar, polling, a cancel button.
		if _, body := get(t, u+loc, "HX-Request", "true"); !strings.Contains(body, `hx-trigger="every 500ms"`) || !strings.Contains(body, "<progress") || !strings.Contains(body, `id="cancel-redrive"`) {
			t.Errorf("running redrive fragment: %s", body)
		}
		status, _, body = dlqPost(t, u+loc+"/cancel", nil)
		var rep console.RedriveReport
		if status != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil || !rep.Done() || !rep.Cancelled {
			t.Fatalf("cancel: %d %s", status, body)
		}
		if rep.Redriven == 0 || rep.Redriven >= 100 || rep.Failed != 0 {
			t.Fatalf("cancelled report: %+v", rep)
		}
		if got := kafkatest.ReadAll(t, addrs, "slow"); int64(len(got)) != rep.Redriven {
			t.Fatalf("slow has %d records, the report says %d redriven", len(got), rep.Redriven)
		}
		_, _, body = dlqPost(t, base+"/plan", nil)
		var plan console.RedrivePlan
		if json.Unmarshal([]byte(body), &plan) != nil || plan.AlreadyRedriven != rep.Redriven || plan.Redrive != 100-rep.Redriven {
			t.Fatalf("dry run after the cancel (%d redriven): %s", rep.Redriven, body)
		}
		if _, body := get(t, u+loc, "HX-Request", "true"); strings.Contains(body, "hx-trigger") || !strings.Contains(body, "Cancelled") {
			t.Errorf("cancelled redrive fragment: %s", body)
		}
		// The page polls only its progress line; the poll that finds the
		// redrive done replaces the whole section.
		resp, err := http.Get(u + loc)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("HX-Retarget") != "#redrive-job" || resp.Header.Get("HX-Reselect") != "#redrive-job" {
			t.Errorf("the poll of a finished redrive is not retargeted to its section: %v", resp.Header)
		}
	})
}

// Spring Kafka's dead letters go back to their original topic and
// partition (binary headers), without the kafka_dlt-* headers; the
// filters combine (key, error text, time range).
func TestRedriveSpringAndFilters(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "inv", 4)
		kafkatest.CreateTopic(t, addrs, "inv-dlt", 1)
		old := time.Now().Add(-time.Hour)
		var recs []*kgo.Record
		for i := range 6 {
			r := springDeadLetter("inv-dlt", "inv", 3, int64(i))
			r.Key = []byte("s" + string(rune('0'+i%2)))
			if i == 0 {
				r.Timestamp = old
			}
			recs = append(recs, r)
		}
		dlqProduce(t, addrs, recs...)
		opts := []kgo.Opt{kgo.SeedBrokers(addrs...)}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sel := console.Selection{Keys: []string{"s0"}, ErrorContains: "BAD STATE", From: old.Add(time.Minute),
			Reasons: []string{"java.lang.IllegalStateException"}, OriginalTopic: "inv", Group: "spring-app"}
		rep, err := console.Redrive(ctx, opts, console.RedriveSpec{DLQ: "inv-dlt", Select: sel}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// s0 is i = 0, 2, 4; i = 0 is older than From.
		if rep.Matched != 2 || rep.Redriven != 2 {
			t.Fatalf("report: %+v", rep)
		}
		got := kafkatest.ReadAll(t, addrs, "inv")
		if len(got) != 2 {
			t.Fatalf("inv has %d records", len(got))
		}
		for _, r := range got {
			if r.Partition != 3 || string(r.Key) != "s0" {
				t.Errorf("record in partition %d with key %s, want partition 3 (kafka_dlt-original-partition), key s0", r.Partition, r.Key)
			}
			for _, h := range r.Headers {
				if strings.HasPrefix(h.Key, "kafka_dlt-") {
					t.Errorf("redriven record kept %s", h.Key)
				}
			}
			if v, _ := dlqHeader(r, console.HeaderRedriveOf); !strings.HasPrefix(v, "inv-dlt/0/") {
				t.Errorf("spool_redrive_of %q", v)
			}
		}
	})
}

// Config.DeadLetterTopics replaces the name patterns; a topic found by its
// headers is listed whatever the patterns.
func TestDeadLetterPatterns(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "failed-payments", 1)
		kafkatest.CreateTopic(t, addrs, "pat.dlq", 1)
		kafkatest.CreateTopic(t, addrs, "pat-dlt", 1)
		dlqProduce(t, addrs, springDeadLetter("pat-dlt", "pat", 0, 1))
		_, u := startConsole(t, addrs, console.Config{DeadLetterTopics: []string{"failed-*"}})
		_, body := get(t, u+"/ui/deadletters")
		if !strings.Contains(body, `/ui/deadletters/failed-payments"`) || strings.Contains(body, `/ui/deadletters/pat.dlq"`) {
			t.Fatalf("patterns not applied: %s", body)
		}
		if !strings.Contains(body, `/ui/deadletters/pat-dlt"`) || !strings.Contains(body, "<code>failed-*</code>") {
			t.Fatalf("topic found by headers missing, or the patterns not shown")
		}
		for _, tc := range []struct {
			patterns []string
			want     string
		}{
			{nil, "pat-dlt:name::1,pat.dlq:name::0"},
			{[]string{"failed-*"}, "failed-payments:name::0,pat-dlt:headers:spring:1"},
		} {
			list, err := console.FindDeadLetterTopics(context.Background(), []kgo.Opt{kgo.SeedBrokers(addrs...)}, tc.patterns)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, d := range list {
				names = append(names, d.Name+":"+d.By+":"+d.Convention+":"+strconv.FormatInt(d.Depth, 10))
			}
			if got := strings.Join(names, ","); got != tc.want {
				t.Errorf("FindDeadLetterTopics(%v): %s, want %s", tc.patterns, got, tc.want)
			}
		}
	})
}

// A dead-letter topic created after the console started is listed and
// served at once (the console's own client caches metadata).
func TestDeadLetterTopicCreatedLater(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		_, u := startConsole(t, addrs, console.Config{})
		if status, _ := get(t, u+"/ui/deadletters/late.dlq", "Accept", "application/json"); status != http.StatusNotFound {
			t.Fatalf("before it exists: %d", status)
		}
		kafkatest.CreateTopic(t, addrs, "late.dlq", 1)
		if _, body := get(t, u+"/ui/deadletters"); !strings.Contains(body, `/ui/deadletters/late.dlq"`) {
			t.Fatalf("a new dead-letter topic is not listed")
		}
		if status, body := get(t, u+"/ui/deadletters/late.dlq"); status != http.StatusOK {
			t.Fatalf("a new dead-letter topic: %d %s", status, body)
		}
	})
}
