package console

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

type bearerAuth struct{ z *auth.Authorizer }

func (a bearerAuth) Principal(r *http.Request) (auth.Principal, error) {
	return auth.User(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")), nil
}

func (a bearerAuth) Allowed(_ *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) bool {
	return a.z.Authorize(p, "127.0.0.1", rt, name, op)
}

// TestNavForPrincipal: the nav shows a page only to a principal allowed
// what it needs, decided on the sampled topics and groups.
func TestNavForPrincipal(t *testing.T) {
	saved := nav
	defer func() { nav = saved }()
	nav = []navItem{{"", "Overview"}, {"topics", "Topics"}, {"messages", "Messages"}, {"groups", "Groups"},
		{"dlq", "Dead letters"}, {"lookback", "Lookback"}, {"requests", "Requests"}}
	acl := func(user string, rt auth.ResourceType, name string, op auth.Operation) auth.ACL {
		return auth.ACL{Principal: auth.User(user), Host: "*", ResourceType: rt, ResourceName: name,
			PatternType: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
	}
	z, err := auth.NewAuthorizer([]auth.ACL{
		acl("describer", kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationDescribe),
		acl("reader", kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationRead),
		acl("grouper", kmsg.ACLResourceTypeGroup, "billing", kmsg.ACLOperationDescribe),
	}, []auth.Principal{auth.User("admin")}, true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Authorizer: bearerAuth{z}})
	if err != nil {
		t.Fatal(err)
	}
	c.sampler.add(sample{At: time.Now(), TopicEnds: map[string]int64{"orders": 3, "other": 1}, GroupCommitted: map[string]int64{"billing": 1}})
	titles := func(user string) []string {
		r := httptest.NewRequest("GET", "/ui/", nil)
		r.Header.Set("Authorization", "Bearer "+user)
		var out []string
		c.authenticate(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			for _, it := range c.navFor(r) {
				out = append(out, it.Title)
			}
		})).ServeHTTP(httptest.NewRecorder(), r)
		return out
	}
	for user, want := range map[string][]string{
		"nobody":    {"Overview"},
		"describer": {"Overview", "Topics"},
		"reader":    {"Overview", "Topics", "Messages", "Dead letters", "Lookback", "Requests"},
		"grouper":   {"Overview", "Groups"},
		"admin":     {"Overview", "Topics", "Messages", "Groups", "Dead letters", "Lookback", "Requests"},
	} {
		if got := titles(user); !slices.Equal(got, want) {
			t.Errorf("%s sees %v, want %v", user, got, want)
		}
	}
	// Before the first sample only wildcard grants (and super users) show
	// the entries that need a resource.
	c.sampler.mu.Lock()
	c.sampler.ring = nil
	c.sampler.mu.Unlock()
	if got := titles("reader"); !slices.Equal(got, []string{"Overview"}) {
		t.Errorf("reader before the first sample sees %v", got)
	}
	if got := titles("admin"); len(got) != len(nav) {
		t.Errorf("admin before the first sample sees %v", got)
	}
	// Before anyone is known (the login page) there is no nav.
	if got := c.navFor(httptest.NewRequest("GET", "/ui/login", nil)); got != nil {
		t.Errorf("nav without a principal: %v", got)
	}
	// 403s name the grant that would allow it.
	r := httptest.NewRequest("GET", "/ui/", nil)
	r.Header.Set("Authorization", "Bearer nobody")
	c.authenticate(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		err := c.mayRead(r, topicResource, "orders", kmsg.ACLOperationRead)
		if err == nil || !strings.Contains(err.Error(), "spool acl add --allow User:nobody --operation READ --topic orders") {
			t.Errorf("mayRead refusal: %v", err)
		}
	})).ServeHTTP(httptest.NewRecorder(), r)
}
