package console_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

// startGatewayFor starts a gateway on addrs (its store in a temporary
// directory) whose callbacks may go to hookURL, answered at once and
// retried only after an hour; it returns the gateway and its API's URL.
func startGatewayFor(t testing.TB, addrs []string, hookURL string) (*gateway.Gateway, string) {
	t.Helper()
	secret := make([]byte, 24)
	rand.Read(secret)
	cfg := gateway.Config{Brokers: addrs, StorePath: filepath.Join(t.TempDir(), "gw.db"), ExpireInterval: 20 * time.Millisecond}
	cfg.Callback = gateway.CallbackConfig{Allow: []string{hookURL}, Secret: "whsec_" + base64.StdEncoding.EncodeToString(secret),
		Schedule: []time.Duration{0, time.Hour}, Poll: 20 * time.Millisecond}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		g.Close()
		srv.Close()
	})
	return g, srv.URL
}

// gwStatus is what the tests read of a request's status.
type gwStatus struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Callback *struct {
		Attempts []json.RawMessage `json:"attempts"`
	} `json:"callback"`
}

// submitCommand submits a command to topic through the gateway's API.
func submitCommand(t testing.TB, api, topic, query, body string) gwStatus {
	t.Helper()
	resp, err := http.Post(api+"/api/commands/"+topic+"?"+query, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st gwStatus
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &st) != nil {
		t.Fatalf("submit to %s: %d %s", topic, resp.StatusCode, b)
	}
	return st
}

// reply answers request id on the gateway's reply topic (status ok or
// error), as a service in any language would.
func reply(t testing.TB, addrs []string, id, status, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := &kgo.Record{Topic: "spool.gateway.replies", Value: []byte(value), Headers: []kgo.RecordHeader{
		{Key: gateway.HeaderCorrelationID, Value: []byte(id)}, {Key: gateway.HeaderStatus, Value: []byte(status)},
		{Key: "content-type", Value: []byte("application/json")}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitRequest polls the gateway until cond holds for request id.
func waitRequest(t testing.TB, api, id, what string, cond func(gwStatus) bool) {
	t.Helper()
	kafkatest.Eventually(t, 30*time.Second, "request "+id+" "+what, func() bool {
		status, body := get(t, api+"/api/requests/"+id)
		var st gwStatus
		return (status == http.StatusOK || status == http.StatusAccepted) && json.Unmarshal([]byte(body), &st) == nil && cond(st)
	})
}

// requestsFixture: on payments, a succeeded request, a failed one whose
// callback target answered 500, and an open one; on refunds, an open one.
type requestsFixture struct {
	api                      string
	handler                  http.Handler
	ok, failed, open, refund gwStatus
}

func newRequestsFixture(t testing.TB, addrs []string) requestsFixture {
	t.Helper()
	kafkatest.CreateTopic(t, addrs, "payments", 2)
	kafkatest.CreateTopic(t, addrs, "refunds", 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "hook down", http.StatusInternalServerError)
	}))
	t.Cleanup(hook.Close)
	g, api := startGatewayFor(t, addrs, hook.URL+"/")
	f := requestsFixture{api: api, handler: g.Handler()}
	f.ok = submitCommand(t, api, "payments", "type=payment.capture&key=order-1", `{"amount": 1250}`)
	f.failed = submitCommand(t, api, "payments", "type=payment.capture&key=order-2&callback="+hook.URL+"/hooks", `{"amount": 99}`)
	f.open = submitCommand(t, api, "payments", "type=payment.capture&key=order-3", `{"amount": 7}`)
	f.refund = submitCommand(t, api, "refunds", "type=refund.issue", `{"amount": 5}`)
	reply(t, addrs, f.ok.ID, gateway.StatusOK, `{"captured":true,"id":"cap-1"}`)
	reply(t, addrs, f.failed.ID, gateway.StatusError, `{"error":"card declined"}`)
	waitRequest(t, api, f.ok.ID, "succeeded", func(s gwStatus) bool { return s.State == "succeeded" })
	waitRequest(t, api, f.failed.ID, "failed with one callback attempt", func(s gwStatus) bool {
		return s.State == "failed" && s.Callback != nil && len(s.Callback.Attempts) == 1
	})
	return f
}

// TestRequestsPage: the requests page lists what the gateway holds, with
// status and callback attempts, filters by status and topic, shows a
// request with its result; on Spool and kfake.
func TestRequestsPage(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		f := newRequestsFixture(t, addrs)
		_, u := startConsole(t, addrs, console.Config{Gateway: f.handler})

		status, body := get(t, u+"/ui/requests")
		if status != http.StatusOK {
			t.Fatalf("requests: %d %s", status, body)
		}
		mustContain(t, "requests page", body, "4 requests shown", f.ok.ID, f.failed.ID, f.open.ID, f.refund.ID,
			">succeeded<", ">failed<", ">pending<", "1 attempt", "target answered 500")
		if i, j := strings.Index(body, f.refund.ID), strings.Index(body, f.ok.ID); i < 0 || j < i {
			t.Error("requests are not newest first")
		}
		_, body = get(t, u+"/ui/requests?status=succeeded")
		mustContain(t, "succeeded requests", body, "1 requests shown", f.ok.ID)
		_, body = get(t, u+"/ui/requests?status=open&topic=payments")
		mustContain(t, "open payments", body, "1 requests shown", f.open.ID)
		_, body = get(t, u+"/ui/requests?topic=nothing-here")
		mustContain(t, "requests of an empty topic", body, "0 requests shown", "No request matches")

		status, body = get(t, u+"/ui/requests/"+f.ok.ID)
		if status != http.StatusOK {
			t.Fatalf("request: %d %s", status, body)
		}
		mustContain(t, "succeeded request", body, `id="req-state">succeeded<`, "&#34;captured&#34;: true", "No callback")
		_, body = get(t, u+"/ui/requests/"+f.failed.ID)
		mustContain(t, "failed request", body, `id="req-state">failed<`, `id="req-attempts"`, "<td>500</td>", "/hooks")
		_, body = get(t, u+"/ui/requests/"+f.open.ID)
		mustContain(t, "open request", body, `hx-trigger="load delay:2s"`, "refreshes while open")
		// The page polls only the fields of an open request; the poll that
		// finds one final replaces the whole detail.
		for id, want := range map[string]string{f.open.ID: "", f.ok.ID: "#req-detail"} {
			req, _ := http.NewRequest(http.MethodGet, u+"/ui/requests/"+id, nil)
			req.Header.Set("HX-Request", "true")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get("HX-Retarget") != want || resp.Header.Get("HX-Reselect") != want {
				t.Errorf("the poll of request %s: HX-Retarget %q, HX-Reselect %q, want %q", id, resp.Header.Get("HX-Retarget"), resp.Header.Get("HX-Reselect"), want)
			}
		}

		// Cancel the open request: the gateway's DELETE; a second cancel
		// is its 409; read-only mode refuses.
		_, ro := startConsole(t, addrs, console.Config{Gateway: f.handler, ReadOnly: true})
		if status, body := postForm(t, ro+"/ui/requests/"+f.open.ID+"/cancel", nil); status != http.StatusForbidden || !strings.Contains(body, "read-only mode") {
			t.Errorf("read-only cancel: %d %s", status, body)
		}
		if _, body := get(t, ro+"/ui/requests/"+f.open.ID); strings.Contains(body, `id="req-cancel"`) {
			t.Error("read-only request page offers a cancel")
		}
		status, body = postForm(t, u+"/ui/requests/"+f.open.ID+"/cancel", nil)
		if status != http.StatusOK || !strings.Contains(body, `id="req-state">cancelled<`) || !strings.Contains(body, "cancelled by the client") {
			t.Fatalf("cancel: %d %s", status, body)
		}
		waitRequest(t, f.api, f.open.ID, "cancelled", func(s gwStatus) bool { return s.State == "cancelled" })
		if status, body := postForm(t, u+"/ui/requests/"+f.open.ID+"/cancel", nil); status != http.StatusConflict || !strings.Contains(body, "already cancelled") {
			t.Errorf("second cancel: %d %s", status, body)
		}

		// Failures: an unknown request is the gateway's 404 with its
		// message; a bad status filter its 400.
		status, body = get(t, u+"/ui/requests/no-such-request")
		if status != http.StatusNotFound || !strings.Contains(body, `gateway: no request &#34;no-such-request&#34;`) {
			t.Errorf("unknown request: %d %s", status, body)
		}
		status, body = get(t, u+"/ui/requests?status=bogus", "Accept", "application/json")
		if status != http.StatusBadRequest || !strings.Contains(body, `status \"bogus\"`) {
			t.Errorf("bad status filter: %d %s", status, body)
		}
	})
}

// TestRequestsOffAndACLs: without a gateway the page says it is off; with
// ACLs a principal sees the requests of the topics it may Read.
func TestRequestsOffAndACLs(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	f := newRequestsFixture(t, addrs)
	_, off := startConsole(t, addrs, console.Config{})
	for _, p := range []string{"/ui/requests", "/ui/requests/" + f.ok.ID} {
		if status, body := get(t, off+p); status != http.StatusOK || !strings.Contains(body, `id="gateway-off"`) || !strings.Contains(body, "--gateway-url") {
			t.Errorf("%s without a gateway: %d, want the page saying it is off", p, status)
		}
	}

	_, u := startConsole(t, addrs, console.Config{Gateway: f.handler, Authorizer: aclAuthorizer(t,
		allow("ann", kmsg.ACLResourceTypeTopic, "payments", kmsg.ACLOperationRead))})
	ann := []string{"Authorization", "Bearer ann"}
	status, body := get(t, u+"/ui/requests", ann...)
	if status != http.StatusOK {
		t.Fatalf("ann's requests: %d %s", status, body)
	}
	mustContain(t, "ann's requests", body, "3 requests shown", `id="r-hidden">1 hidden`)
	if strings.Contains(body, f.refund.ID) {
		t.Error("ann sees a refunds request")
	}
	if status, body := get(t, u+"/ui/requests?topic=refunds", ann...); status != http.StatusForbidden || !strings.Contains(body, "may not READ") {
		t.Errorf("ann filters on refunds: %d %s", status, body)
	}
	if status, body := get(t, u+"/ui/requests/"+f.refund.ID, ann...); status != http.StatusForbidden || strings.Contains(body, "refund.issue") {
		t.Errorf("ann opens a refunds request: %d %s", status, body)
	}
	if status, body := postForm(t, u+"/ui/requests/"+f.open.ID+"/cancel", nil, ann...); status != http.StatusForbidden || !strings.Contains(body, "may not WRITE") {
		t.Errorf("ann cancels without Write: %d %s", status, body)
	}
	if status, _ := get(t, u+"/ui/requests/"+f.refund.ID, "Authorization", "Bearer admin"); status != http.StatusOK {
		t.Errorf("admin opens a refunds request: %d", status)
	}
}

// TestBrowserRequests: the requests page and a request in chromium, at
// 1280 and 390 px, without console errors. Screenshots for the docs.
func TestBrowserRequests(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	f := newRequestsFixture(t, addrs)
	_, u := startConsole(t, addrs, console.Config{Gateway: f.handler})
	ctx := tab(t)
	row := `#requests tr[data-id="` + f.failed.ID + `"]`
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(u+"/ui/requests"),
		chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, row+" .r-state"); got != "failed" {
		t.Fatalf("failed request's state %q", got)
	}
	if got := text(t, ctx, "nav a[aria-current=page]"); got != "Requests" {
		t.Fatalf("current nav entry %q", got)
	}
	screenshot(t, ctx, "requests")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(chromedp.ID("req-attempts"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#req-state"); got != "failed" {
		t.Fatalf("request page state %q", got)
	}
	screenshot(t, ctx, "request")
	// The open request refreshes itself; once answered, the page shows it.
	if err := chromedp.Do(ctx, chromedp.Navigate(u+"/ui/requests/"+f.open.ID), chromedp.WaitVisible(chromedp.CSS(`#req-detail[data-state=pending]`))); err != nil {
		t.Fatal(err)
	}
	reply(t, addrs, f.open.ID, gateway.StatusOK, `{"captured":true}`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#req-detail[data-state=succeeded]`))); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"requests", "requests/" + f.failed.ID} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(u+"/ui/"+p), chromedp.WaitVisible(chromedp.CSS("main h1"))); err != nil {
			t.Fatalf("%s at 390 px: %v", p, err)
		}
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil || wide {
			t.Errorf("%s at 390 px: the page scrolls sideways (%v)", p, err)
		}
	}
}

// TestAPIsThroughProxy: the standalone console reaches the lookback and
// gateway APIs through reverse proxies (spool console --lookback-url
// --gateway-url): pages work, and the APIs' errors keep their status and
// message.
func TestAPIsThroughProxy(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	f := newRequestsFixture(t, addrs)
	kafkatest.CreateTopic(t, addrs, "orders", 1)
	svc, st := startLookback(t, addrs)
	produceChain(t, addrs, "flow-proxy", "customer-3")
	kafkatest.Eventually(t, 30*time.Second, "the flow archived", func() bool {
		p, err := st.Search(context.Background(), lookback.Query{CorrelationID: "flow-proxy"})
		return err == nil && len(p.Events) == 3
	})
	var (
		mu    sync.Mutex
		hosts []string
	)
	lbSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		svc.Handler().ServeHTTP(w, r)
	}))
	defer lbSrv.Close()
	lbURL, _ := url.Parse(lbSrv.URL)
	gwURL, _ := url.Parse(f.api)
	_, u := startConsole(t, addrs, console.Config{Lookback: httputil.NewSingleHostReverseProxy(lbURL),
		Gateway: httputil.NewSingleHostReverseProxy(gwURL)})

	if status, body := get(t, u+"/ui/lookback/flows/flow-proxy"); status != http.StatusOK || !strings.Contains(body, `id="flow-events">3<`) {
		t.Errorf("flow through the proxy: %d", status)
	}
	if status, body := get(t, u+"/ui/lookback/flows/nope"); status != http.StatusNotFound || !strings.Contains(body, "no archived event has correlation id") {
		t.Errorf("unknown flow through the proxy: %d %s", status, body)
	}
	if status, body := get(t, u+"/ui/lookback?to=bad"); status != http.StatusBadRequest || !strings.Contains(body, "want an RFC 3339 time") {
		t.Errorf("bad filter through the proxy: %d", status)
	}
	if status, body := get(t, u+"/ui/requests?status=succeeded"); status != http.StatusOK || !strings.Contains(body, f.ok.ID) {
		t.Errorf("requests through the proxy: %d", status)
	}
	if status, body := get(t, u+"/ui/requests/nope"); status != http.StatusNotFound || !strings.Contains(body, "no request") {
		t.Errorf("unknown request through the proxy: %d %s", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) == 0 {
		t.Fatal("no request reached the lookback API's server")
	}
	for _, h := range hosts {
		if h != lbURL.Host {
			t.Fatalf("the lookback API got Host %q, want its own %q", h, lbURL.Host)
		}
	}
}
