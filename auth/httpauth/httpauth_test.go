package httpauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/internal/httpapi"
	"github.com/spoolmq/spool/internal/kafkatest"
)

const (
	aliceToken = "alice-0123456789abcdef"
	bobToken   = "bob-0123456789abcdef"
)

func tokens(t *testing.T) *auth.Tokens {
	t.Helper()
	tk, err := auth.ParseTokens(strings.NewReader(aliceToken + " User:alice\n" + bobToken + " bob\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func allow(p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) auth.ACL {
	return auth.ACL{Principal: p, Host: auth.Wildcard, ResourceType: rt, ResourceName: name,
		PatternType: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
}

func status(err error) int {
	var he *httpapi.Error
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

func TestAuthenticate(t *testing.T) {
	z, err := auth.NewAuthorizer([]auth.ACL{allow(auth.User("alice"), kmsg.ACLResourceTypeTopic, "a", kmsg.ACLOperationWrite)}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := httpauth.New(httpauth.Config{Tokens: tokens(t), ACLs: z})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ header, want string }{
		{"", "missing bearer token"},
		{"Bearer nope-0123456789abcdef", "unknown bearer token"},
		{"Basic " + aliceToken, `must be "Bearer <token>"`},
		{"Bearer ", `must be "Bearer <token>"`},
	} {
		r := httptest.NewRequest("GET", "/api/x", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		_, err := a.Principal(r)
		if status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Authorization %q: %v (status %d), want 401 %q", tc.header, err, status(err), tc.want)
		}
	}
	r := httptest.NewRequest("GET", "/api/x", nil)
	r.Header.Set("Authorization", "bearer "+aliceToken)
	p, err := a.Principal(r)
	if err != nil || p != auth.User("alice") {
		t.Fatalf("alice's token: %q %v", p, err)
	}
	if err := a.Check(r, p, kmsg.ACLResourceTypeTopic, "a", kmsg.ACLOperationWrite); err != nil {
		t.Errorf("alice Write a: %v", err)
	}
	err = a.Check(r, p, kmsg.ACLResourceTypeTopic, "b", kmsg.ACLOperationWrite)
	if status(err) != http.StatusForbidden || !strings.Contains(err.Error(), "spool acl add --allow User:alice --operation WRITE --topic b") {
		t.Errorf("alice Write b: %v, want 403 naming the grant", err)
	}
	// The query parameter browsers use for EventSource.
	r = httptest.NewRequest("GET", "/api/topics/a/events?access_token="+bobToken, nil)
	if p, err := a.Principal(r); err != nil || p != auth.User("bob") {
		t.Errorf("access_token: %q %v", p, err)
	}
	// An identity put into the context by code in the process.
	r = httptest.NewRequest("GET", "/api/x", nil)
	r = r.WithContext(httpauth.NewContext(r.Context(), httpauth.Identity{Principal: auth.User("carol"), Host: "10.1.1.1"}))
	if p, err := a.Principal(r); err != nil || p != auth.User("carol") {
		t.Errorf("context identity: %q %v", p, err)
	}
}

func TestLoginLogout(t *testing.T) {
	z, _ := auth.NewAuthorizer(nil, nil, false)
	now := time.Unix(1_800_000_000, 0)
	a, err := httpauth.New(httpauth.Config{Tokens: tokens(t), ACLs: z, CookiePath: "/ui/", SessionTTL: time.Hour,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if _, err := a.Login(w, httptest.NewRequest("POST", "/ui/login", nil), "wrong-0123456789abcdef"); status(err) != http.StatusUnauthorized {
		t.Fatalf("login with an unknown token: %v", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("a refused login set a cookie")
	}
	w = httptest.NewRecorder()
	p, err := a.Login(w, httptest.NewRequest("POST", "/ui/login", nil), aliceToken)
	if err != nil || p != auth.User("alice") {
		t.Fatalf("login: %q %v", p, err)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies: %v", cs)
	}
	c := cs[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.Secure || strings.Contains(c.Value, aliceToken) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, not Secure without TLS, no token in it", c)
	}
	withCookie := func(c *http.Cookie) *http.Request {
		r := httptest.NewRequest("GET", "/ui/", nil)
		r.AddCookie(c)
		return r
	}
	if p, err := a.Principal(withCookie(c)); err != nil || p != auth.User("alice") {
		t.Fatalf("with the session cookie: %q %v", p, err)
	}
	forged := *c
	forged.Value = "x" + c.Value[1:]
	if _, err := a.Principal(withCookie(&forged)); status(err) != http.StatusUnauthorized {
		t.Fatalf("a forged session: %v", err)
	}
	// Over TLS the cookie is Secure.
	tr := httptest.NewRequest("POST", "https://spool.example/ui/login", nil)
	w = httptest.NewRecorder()
	if _, err := a.Login(w, tr, bobToken); err != nil || !w.Result().Cookies()[0].Secure {
		t.Fatalf("login over TLS: %v, cookie %+v", err, w.Result().Cookies())
	}
	// Logout ends the session.
	w = httptest.NewRecorder()
	a.Logout(w, withCookie(c))
	if out := w.Result().Cookies(); len(out) != 1 || out[0].MaxAge >= 0 {
		t.Fatalf("logout cookie: %v", out)
	}
	if _, err := a.Principal(withCookie(c)); status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "log in again") {
		t.Fatalf("after logout: %v", err)
	}
	// A session ends after SessionTTL.
	w = httptest.NewRecorder()
	a.Login(w, httptest.NewRequest("POST", "/ui/login", nil), aliceToken)
	c = w.Result().Cookies()[0]
	now = now.Add(time.Hour)
	if _, err := a.Principal(withCookie(c)); status(err) != http.StatusUnauthorized {
		t.Fatalf("an expired session: %v", err)
	}
}

func TestSessionBound(t *testing.T) {
	z, _ := auth.NewAuthorizer(nil, nil, false)
	a, _ := httpauth.New(httpauth.Config{Tokens: tokens(t), ACLs: z, MaxSessions: 2})
	var cookies []*http.Cookie
	for range 3 {
		w := httptest.NewRecorder()
		if _, err := a.Login(w, httptest.NewRequest("POST", "/ui/login", nil), aliceToken); err != nil {
			t.Fatal(err)
		}
		cookies = append(cookies, w.Result().Cookies()[0])
	}
	live := 0
	for _, c := range cookies {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(c)
		if _, err := a.Principal(r); err == nil {
			live++
		}
	}
	if live != 2 {
		t.Fatalf("%d sessions live with MaxSessions 2", live)
	}
}

// TestACLSource: the ACLs of a cluster, read with DescribeAcls, decide; an
// ACL created with kadm decides after the next Load, on Spool and kfake.
func TestACLSource(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		create := func(b *kadm.ACLBuilder) {
			t.Helper()
			res, err := adm.CreateACLs(ctx, b)
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
		// The anonymous admin connection itself keeps Describe on the
		// cluster (and everything else), as the services' principal needs.
		create(kadm.NewACLs().Allow("User:ANONYMOUS").Clusters().Topics("*").Groups("*").Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternLiteral))
		create(kadm.NewACLs().Allow("User:alice").Topics("orders.").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternPrefixed))
		src, err := httpauth.NewACLSource(httpauth.ACLSourceConfig{Admin: adm, Refresh: time.Hour, SuperUsers: []auth.Principal{"User:root"}})
		if err != nil {
			t.Fatal(err)
		}
		if src.Authorize(auth.User("alice"), "127.0.0.1", kmsg.ACLResourceTypeTopic, "orders.eu", kmsg.ACLOperationRead) {
			t.Fatal("allowed before the first read")
		}
		if err := src.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		alice := auth.User("alice")
		if !src.Authorize(alice, "127.0.0.1", kmsg.ACLResourceTypeTopic, "orders.eu", kmsg.ACLOperationRead) {
			t.Error("alice may not read orders.eu (PREFIXED orders.)")
		}
		if !src.Authorize(alice, "127.0.0.1", kmsg.ACLResourceTypeTopic, "orders.eu", kmsg.ACLOperationDescribe) {
			t.Error("Read does not imply Describe")
		}
		if src.Authorize(alice, "127.0.0.1", kmsg.ACLResourceTypeTopic, "orders.eu", kmsg.ACLOperationWrite) {
			t.Error("alice may write orders.eu")
		}
		if !src.Authorize("User:root", "127.0.0.1", kmsg.ACLResourceTypeTopic, "x", kmsg.ACLOperationDelete) {
			t.Error("a super user was refused")
		}
		create(kadm.NewACLs().Allow("User:alice").Topics("payments").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
		if src.Authorize(alice, "127.0.0.1", kmsg.ACLResourceTypeTopic, "payments", kmsg.ACLOperationWrite) {
			t.Error("a new ACL decided before the refresh")
		}
		if err := src.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if !src.Authorize(alice, "127.0.0.1", kmsg.ACLResourceTypeTopic, "payments", kmsg.ACLOperationWrite) {
			t.Error("the ACL added with kadm does not decide after Load")
		}
	})
}

// TestACLSourceRefresh: the periodic refresh picks an ACL up by itself.
func TestACLSourceRefresh(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, _ := httpauth.NewACLSource(httpauth.ACLSourceConfig{Admin: adm, Refresh: 20 * time.Millisecond})
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// No ACLs: everything allowed, as the broker decides without ACLs.
	if !src.Authorize(auth.User("bob"), "h", kmsg.ACLResourceTypeTopic, "t", kmsg.ACLOperationWrite) {
		t.Fatal("refused without any ACL")
	}
	if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, 30*time.Second, "bob refused once alice's ACL exists", func() bool {
		return !src.Authorize(auth.User("bob"), "h", kmsg.ACLResourceTypeTopic, "t", kmsg.ACLOperationWrite)
	})
	src.Close()
	src.Close()
}
