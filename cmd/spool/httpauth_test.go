package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

const (
	aliceHTTPToken = "alice-http-token-0123456789"
	adminHTTPToken = "admin-http-token-0123456789"
)

// httpDo sends a request with token ("" for none) and returns the status,
// the Content-Type and the body.
func httpDo(t *testing.T, method, url, token, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func addACL(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := adm.CreateACLs(ctx, b.ResourcePatternType(kadm.ACLPatternLiteral))
	if err == nil {
		for _, r := range res {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		t.Fatalf("CreateACLs: %v", err)
	}
}

// TestServeHTTPTokens: `spool serve --http-tokens` makes the gateway, the
// lookback API and the console authenticate bearer tokens as principals
// and decide with the broker's live ACLs: alice, allowed Write on A,
// produces to A and is refused B (403 naming the grant) until an ACL
// created with kadm allows it, on the very next request; lookback search
// hides the events of topics she may not Read; the console asks for a
// login; the scoped --gateway-token keeps its scopes; /metrics, /healthz
// and /readyz stay open.
func TestServeHTTPTokens(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "http-tokens")
	if err := os.WriteFile(tokens, []byte("# HTTP tokens\n"+aliceHTTPToken+" User:alice\n"+adminHTTPToken+" User:admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The embedded services connect as User:ANONYMOUS over the loopback
	// listener; here they are super users, so only the HTTP side is
	// restricted.
	addr, srv := runServeCmd(t, filepath.Join(dir, "data"), "--http-tokens", tokens,
		"--super-users", "User:ANONYMOUS,User:admin", "--gateway-token", "shop:shop-secret-0123:produce:B")
	defer srv.stop()
	base := "http://" + srv.httpAddr
	kafkatest.CreateTopic(t, []string{addr}, "A", 1)
	kafkatest.CreateTopic(t, []string{addr}, "B", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	addACL(t, adm, kadm.NewACLs().Allow("User:alice").Topics("A").Operations(kadm.OpWrite))

	rec := `{"records":[{"key":"k","value":{"n":1}}]}`
	for _, c := range []struct{ token, want string }{{"", "missing bearer token"}, {"not-a-token-0123456789", "unknown bearer token"}} {
		code, ct, body := httpDo(t, "POST", base+"/api/topics/A/records", c.token, rec)
		if code != 401 || ct != "application/problem+json" || !strings.Contains(body, c.want) {
			t.Fatalf("produce with token %q: %d %s %s, want 401 problem+json %q", c.token, code, ct, body, c.want)
		}
	}
	if code, _, body := httpDo(t, "POST", base+"/api/topics/A/records", aliceHTTPToken, rec); code != 200 {
		t.Fatalf("alice produces to A: %d %s", code, body)
	}
	code, ct, body := httpDo(t, "POST", base+"/api/topics/B/records", aliceHTTPToken, rec)
	var problem struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if code != 403 || ct != "application/problem+json" || json.Unmarshal([]byte(body), &problem) != nil ||
		problem.Detail != `User:alice may not WRITE TOPIC "B": no ACL allows it; the grant that would: spool acl add --allow User:alice --operation WRITE --topic B` {
		t.Fatalf("alice produces to B: %d %s %s", code, ct, body)
	}
	// The scoped gateway token: its scope decides, not the ACLs.
	if code, _, body := httpDo(t, "POST", base+"/api/topics/B/records", "shop-secret-0123", rec); code != 200 {
		t.Fatalf("the scoped token produces to B: %d %s", code, body)
	}
	if code, _, body := httpDo(t, "POST", base+"/api/topics/A/records", "shop-secret-0123", rec); code != 403 || !strings.Contains(body, "no produce scope") {
		t.Fatalf("the scoped token produces to A: %d %s", code, body)
	}
	// An ACL added with kadm decides the next HTTP request.
	addACL(t, adm, kadm.NewACLs().Allow("User:alice").Topics("B").Operations(kadm.OpWrite))
	if code, _, body := httpDo(t, "POST", base+"/api/topics/B/records", aliceHTTPToken, rec); code != 200 {
		t.Fatalf("alice produces to B after the ACL: %d %s", code, body)
	}
	if na, nb := len(kafkatest.ReadAll(t, []string{addr}, "A")), len(kafkatest.ReadAll(t, []string{addr}, "B")); na != 1 || nb != 2 {
		t.Fatalf("A has %d records (want 1), B %d (want 2)", na, nb)
	}

	// Lookback: search hides the events of topics without Read.
	var all lookback.SearchResponse
	kafkatest.Eventually(t, 30*time.Second, "the archive holds the 3 records", func() bool {
		code, _, body := httpDo(t, "GET", base+"/api/lookback/events", adminHTTPToken, "")
		return code == 200 && json.Unmarshal([]byte(body), &all) == nil && len(all.Events) == 3
	})
	code, _, body = httpDo(t, "GET", base+"/api/lookback/events", aliceHTTPToken, "")
	if code != 200 || strings.Contains(body, `"topic":`) {
		t.Fatalf("alice, without Read, searches: %d %s, want no event", code, body)
	}
	addACL(t, adm, kadm.NewACLs().Allow("User:alice").Topics("A").Operations(kadm.OpRead))
	var mine lookback.SearchResponse
	code, _, body = httpDo(t, "GET", base+"/api/lookback/events", aliceHTTPToken, "")
	if code != 200 || json.Unmarshal([]byte(body), &mine) != nil || len(mine.Events) != 1 || mine.Events[0].Topic != "A" {
		t.Fatalf("alice, with Read on A, searches: %d %s, want A's event only", code, body)
	}
	if code, _, body = httpDo(t, "GET", base+"/api/lookback/events?topic=B", aliceHTTPToken, ""); code != 403 || !strings.Contains(body, "--operation READ --topic B") {
		t.Fatalf("alice searches B: %d %s", code, body)
	}
	if code, _, _ = httpDo(t, "GET", base+"/api/lookback/events", "", ""); code != 401 {
		t.Fatalf("lookback without a token: %d", code)
	}
	// The lookback CLI sends SPOOL_TOKEN.
	t.Setenv("SPOOL_TOKEN", aliceHTTPToken)
	if r := runCLI("lookback", "search", "--server", base, "--topic", "B"); r.err == nil || !strings.Contains(r.err.Error(), "403") {
		t.Fatalf("spool lookback search --topic B as alice: %v %s", r.err, r.out)
	}

	// Console: a page load without credentials goes to the login page; a
	// bearer token shows the principal.
	if code, _, _ = httpDo(t, "GET", base+"/ui/", "", ""); code != http.StatusSeeOther {
		t.Fatalf("console without a token: %d, want 303 to the login page", code)
	}
	if code, _, body = httpDo(t, "GET", base+"/ui/", aliceHTTPToken, ""); code != 200 || !strings.Contains(body, "User:alice") {
		t.Fatalf("console as alice: %d", code)
	}
	// Logged in with a session cookie only, the console's lookback page
	// calls the in-process lookback API as alice: her events of A, none of
	// B (a 401 from the API would be the page's status).
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(base+"/ui/login", url.Values{"token": {aliceHTTPToken}, "next": {"/ui/lookback?since=1h"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "/ui/lookback/events/A/0/") || strings.Contains(string(page), "/ui/lookback/events/B/") {
		t.Fatalf("the lookback page after a cookie login: %d %s", resp.StatusCode, page)
	}
	// The operational endpoints stay open.
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _, _ = httpDo(t, "GET", base+p, "", ""); code != 200 {
			t.Errorf("%s without a token: %d", p, code)
		}
	}
}

func TestServeHTTPTokensBadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokens")
	os.WriteFile(bad, []byte("short User:x\n"), 0o600)
	for file, want := range map[string]string{bad: "at least 16 characters", filepath.Join(dir, "missing"): "no such file"} {
		r := runCLI("serve", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--http-tokens", file)
		if r.err == nil || !strings.Contains(r.err.Error(), want) {
			t.Errorf("serve --http-tokens %s: %v, want %q", file, r.err, want)
		}
	}
}

// startCommand runs a spool command that prints "PREFIX http://ADDR..."
// once it serves, and returns that base URL; the command is stopped at the
// end of the test.
func startCommand(t *testing.T, prefix string, args ...string) string {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	root := newRootCmd()
	root.SetOut(pw)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("spool %s: %v", args[0], err)
		}
	})
	sc := bufio.NewScanner(pr)
	var base string
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), prefix); ok {
			base, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" {
		t.Fatalf("spool %s did not print its address", args[0])
	}
	return strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/ui/")
}

// TestStandaloneHTTPTokens: `spool gateway --http-tokens` against another
// cluster reads its ACLs with DescribeAcls: alice's Write on A decides, and
// an ACL created with kadm decides after the next refresh; `spool console
// --http-tokens` asks for a login. A service whose Kafka principal may not
// describe the ACLs does not start, and says what it needs.
func TestStandaloneHTTPTokens(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "http-tokens")
	os.WriteFile(tokens, []byte(aliceHTTPToken+" User:alice\n"), 0o600)
	addrs := kafkatest.StartKfake(t)
	kafkatest.CreateTopic(t, addrs, "A", 1)
	kafkatest.CreateTopic(t, addrs, "B", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	addACL(t, adm, kadm.NewACLs().Allow("User:alice").Topics("A").Operations(kadm.OpWrite))
	brokers := strings.Join(addrs, ",")
	gw := "http://" + startCommand(t, "gateway on ", "gateway", "--brokers", brokers, "--http", "127.0.0.1:0",
		"--store", filepath.Join(dir, "gw.db"), "--log-level", "error", "--http-tokens", tokens, "--http-acl-refresh", "50ms")
	rec := `{"records":[{"value":1}]}`
	if code, _, body := httpDo(t, "POST", gw+"/api/topics/A/records", aliceHTTPToken, rec); code != 200 {
		t.Fatalf("alice produces to A: %d %s", code, body)
	}
	if code, _, body := httpDo(t, "POST", gw+"/api/topics/B/records", aliceHTTPToken, rec); code != 403 || !strings.Contains(body, "--operation WRITE --topic B") {
		t.Fatalf("alice produces to B: %d %s", code, body)
	}
	if code, _, _ := httpDo(t, "POST", gw+"/api/topics/A/records", "", rec); code != 401 {
		t.Fatalf("without a token: %d", code)
	}
	addACL(t, adm, kadm.NewACLs().Allow("User:alice").Topics("B").Operations(kadm.OpWrite))
	kafkatest.Eventually(t, 30*time.Second, "alice's new ACL on B to apply", func() bool {
		code, _, _ := httpDo(t, "POST", gw+"/api/topics/B/records", aliceHTTPToken, rec)
		return code == 200
	})

	con := "http://" + startCommand(t, "console on ", "console", "--brokers", brokers, "--http", "127.0.0.1:0",
		"--log-level", "error", "--http-tokens", tokens)
	if code, _, _ := httpDo(t, "GET", con+"/ui/", "", ""); code != http.StatusSeeOther {
		t.Fatalf("standalone console without a token: %d", code)
	}
	if code, _, body := httpDo(t, "GET", con+"/ui/", aliceHTTPToken, ""); code != 200 || !strings.Contains(body, "User:alice") {
		t.Fatalf("standalone console as alice: %d", code)
	}

	// Spool with an ACL that leaves User:ANONYMOUS without Describe on the
	// cluster: the lookback service cannot read the ACLs and says so.
	saddr, srv := runServeCmd(t, filepath.Join(dir, "data"), "--lookback=false", "--gateway=false", "--console=false")
	defer srv.stop()
	scl, err := kgo.NewClient(kgo.SeedBrokers(saddr))
	if err != nil {
		t.Fatal(err)
	}
	defer scl.Close()
	addACL(t, kadm.NewClient(scl), kadm.NewACLs().Allow("User:alice").Topics("A").Operations(kadm.OpRead))
	r := runCLI("lookback", "serve", "--brokers", saddr, "--http", "127.0.0.1:0", "--store", filepath.Join(dir, "lb"),
		"--http-tokens", tokens)
	if r.err == nil || !strings.Contains(r.err.Error(), "CLUSTER_AUTHORIZATION_FAILED") || !strings.Contains(r.err.Error(), "needs Describe on the cluster") {
		t.Fatalf("lookback serve without Describe on the cluster: %v", r.err)
	}
}
