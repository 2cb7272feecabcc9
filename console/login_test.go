package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/console"
)

const annToken = "ann-token-0123456789"

// tokenAuth is the production authenticator: ann's token is User:ann, who
// may describe the topic "seen" only.
func tokenAuth(t *testing.T) (*httpauth.Authenticator, *auth.Authorizer) {
	t.Helper()
	z, err := auth.NewAuthorizer([]auth.ACL{allow("ann", kmsg.ACLResourceTypeTopic, "seen", kmsg.ACLOperationDescribe)}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := auth.ParseTokens(strings.NewReader(annToken + " User:ann\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := httpauth.New(httpauth.Config{Tokens: tk, ACLs: z, CookiePath: "/ui/"})
	if err != nil {
		t.Fatal(err)
	}
	return a, z
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestLogin: a page load without credentials goes to the login page, an
// action or fragment gets 401 problem+json; an unknown token is refused; a
// token logs in (HttpOnly, SameSite=Strict cookie) and back to the page
// asked for, which names the principal and offers logout; logout ends the
// session; a foreign next= is not followed.
func TestLogin(t *testing.T) {
	addrs := startKfakeWithTopics(t, "seen", "hidden")
	a, _ := tokenAuth(t)
	_, base := startConsole(t, addrs, console.Config{Authorizer: a})
	jar, _ := cookiejar.New(nil)
	cl := noRedirect(jar)

	resp, err := cl.Get(base + "/ui/?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login?next=%2Fui%2F%3Fx%3D1" {
		t.Fatalf("a page without credentials: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest("GET", base+"/ui/", nil)
	req.Header.Set("HX-Request", "true")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"detail":"console: httpauth: missing bearer token`) ||
		resp.Header.Get("WWW-Authenticate") != `Bearer realm="spool"` {
		t.Fatalf("an htmx request without credentials: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	var status int
	if status, body = get(t, base+"/ui/login"); status != 200 || !strings.Contains(body, `name="token"`) || strings.Contains(body, `href="/ui/topics"`) {
		t.Fatalf("login page: %d %s", status, body)
	}
	post := func(form url.Values) *http.Response {
		t.Helper()
		resp, err := cl.PostForm(base+"/ui/login", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp = post(url.Values{"token": {"wrong-0123456789abcd"}, "next": {"/ui/"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login with an unknown token: %d", resp.StatusCode)
	}
	if len(jar.Cookies(mustURL(t, base+"/ui/"))) != 0 {
		t.Fatal("a refused login set a cookie")
	}
	if resp = post(url.Values{"token": {annToken}, "next": {"//evil.example/ui/"}}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("login with a foreign next: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sc string
	for _, h := range resp.Header.Values("Set-Cookie") {
		sc += h
	}
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") || !strings.Contains(sc, "Path=/ui/") || strings.Contains(sc, annToken) {
		t.Fatalf("session cookie %q", sc)
	}
	resp, err = cl.Get(base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	b := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(b, `id="principal" title="Signed in as">User:ann<`) ||
		!strings.Contains(b, `action="/ui/logout"`) || !strings.Contains(b, `id="topic-count">1<`) {
		t.Fatalf("overview after login: %d %s", resp.StatusCode, b)
	}
	resp, err = cl.PostForm(base+"/ui/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ = cl.Get(base + "/ui/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d, want the login page", resp.StatusCode)
	}
	resp.Body.Close()
	// Bearer tokens work without a session (scripts, curl).
	if status, body = get(t, base+"/ui/", "Authorization", "Bearer "+annToken); status != 200 || !strings.Contains(body, "User:ann") {
		t.Fatalf("with a bearer token: %d", status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readOnlyExempt are the POST routes that read-only mode keeps, because
// they change nothing in the cluster. A new write route belongs here only
// with such a reason; every other one must refuse with mayWrite.
var readOnlyExempt = map[string]string{
	"POST login":                            "signs in",
	"POST logout":                           "signs out",
	"POST deadletters/{topic}/redrive/plan": "a dry run: shows what a redrive would do, its apply button disabled in read-only mode",
	"POST deadletters/{topic}/redrive/{id}/cancel": "stops a redrive this console started, and a read-only console starts none",
}

// TestReadOnlyRefusesEveryWrite: every POST, PUT, PATCH and DELETE route
// registered in console/*.go (found in the source, so a page added later
// is checked too) answers 403 problem+json naming read-only mode, before
// it looks at the cluster, when its input asks for a change.
func TestReadOnlyRefusesEveryWrite(t *testing.T) {
	addrs := startKfakeWithTopics(t, "t1")
	// The lookback and gateway APIs are only read: a page may look up what
	// it needs for its ACL check (the topic of a request) before refusing.
	// Any change sent to them fails the test. They answer every read with
	// one object naming the topic t1.
	never := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			t.Errorf("read-only mode sent a change to the API: %s %s", r.Method, r.URL)
			http.Error(w, "called", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"t1","topic":"t1","state":"pending"}`)
	})
	_, base := startConsole(t, addrs, console.Config{ReadOnly: true, Lookback: never, Gateway: never})
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	route := regexp.MustCompile(`"(POST|PUT|PATCH|DELETE) "\s*\+\s*b\s*\+\s*"([^"]*)"`)
	wildcard := regexp.MustCompile(`\{[^}]*\}`)
	found := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range route.FindAllStringSubmatch(string(src), -1) {
			found[m[1]+" "+m[2]] = true
			if readOnlyExempt[m[1]+" "+m[2]] != "" {
				continue
			}
			path := strings.TrimSuffix(wildcard.ReplaceAllString(m[2], "t1"), "{$}")
			// The inputs that make each action a change rather than a dry run
			// (a dry run may answer in read-only mode).
			form := url.Values{"confirm": {"t1"}, "action": {"apply"}, "set": {"t1:0:0"}, "topic": {"t1"}, "name": {"t2"}}
			req, _ := http.NewRequest(m[1], base+"/ui/"+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("HX-Request", "true")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b := readBody(t, resp)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(b, "read-only") {
				t.Errorf("%s /ui/%s in read-only mode: %d %s %s, want 403 problem+json naming read-only mode", m[1], path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
		}
	}
	if !found["POST login"] || !found["POST logout"] {
		t.Fatalf("the route scan found %v: it no longer recognises console.go's routes", found)
	}
	t.Logf("write routes checked: %v", found)
	// Login stays open in read-only mode.
	if resp, err := http.PostForm(base+"/ui/logout", nil); err != nil || resp.StatusCode == http.StatusForbidden {
		t.Fatalf("logout in read-only mode: %v %v", resp, err)
	}
}

// TestBrowserLogin: in chromium, at 1280 px and on a phone (390 px), the
// console sends a visitor to the login page, a wrong token is refused on
// the page, ann's token logs in, and the overview then counts only the
// topics ann may describe and names her with a logout button, which ends
// the session.
func TestBrowserLogin(t *testing.T) {
	addrs := startKfakeWithTopics(t, "seen", "hidden", "other")
	a, _ := tokenAuth(t)
	_, base := startConsole(t, addrs, console.Config{Authorizer: a})
	for _, width := range []int64{1280, 390} {
		t.Run(strconv.FormatInt(width, 10), func(t *testing.T) {
			ctx := tab(t)
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 900), chromedp.Navigate(base+"/ui/"),
				chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
				t.Fatal(err)
			}
			if width == 1280 {
				screenshot(t, ctx, "login")
			}
			if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), "not-a-token-0123456789"),
				chromedp.Submit(chromedp.ID("token")), chromedp.WaitVisible(chromedp.ID("login-error"))); err != nil {
				t.Fatal(err)
			}
			if got := text(t, ctx, "#login-error"); !strings.Contains(got, "Unknown token") {
				t.Fatalf("login error %q", got)
			}
			if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), annToken),
				chromedp.Submit(chromedp.ID("token")), chromedp.WaitVisible(chromedp.ID("principal"))); err != nil {
				t.Fatal(err)
			}
			if got := text(t, ctx, "#principal"); got != "User:ann" {
				t.Fatalf("principal shown %q", got)
			}
			if got := text(t, ctx, "#topic-count"); got != "1" {
				t.Fatalf("ann sees %s topics, want 1 (she may describe only seen)", got)
			}
			// With Describe on one topic and nothing else, the nav offers
			// the overview and the topics, not the pages that need Read or a
			// group.
			if got := strings.Fields(text(t, ctx, "header.top nav")); !slices.Equal(got, []string{"Overview", "Topics"}) {
				t.Fatalf("ann's nav: %q, want Overview and Topics", got)
			}
			// The topics page lists only the topic she may describe.
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`header.top nav a[href="/ui/topics"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#topics-table tr[data-topic="seen"]`))); err != nil {
				t.Fatal(err)
			}
			rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#topics-table tr[data-topic]")].map(r => r.dataset.topic)`))
			if err != nil || !slices.Equal(rows, []string{"seen"}) {
				t.Fatalf("ann's topics page lists %v (%v), want [seen]", rows, err)
			}
			if width == 1280 {
				screenshot(t, ctx, "login-topics")
			}
			cookie, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.cookie"))
			if err != nil || cookie != "" {
				t.Fatalf("the session cookie is readable by scripts: %q %v", cookie, err)
			}
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
				t.Fatalf("after logout the overview should send to the login page: %v", err)
			}
		})
	}
}
