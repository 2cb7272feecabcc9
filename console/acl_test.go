package console_test

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/console"
)

// testAuthorizer is the real ACL engine (auth.Authorizer, forced on) with
// the principal taken from "Authorization: Bearer NAME" (User:NAME), for
// the page tests of missing ACLs. The production Authorizer (tokens,
// cookies) has tests of its own.
type testAuthorizer struct{ z *auth.Authorizer }

func (a testAuthorizer) Principal(r *http.Request) (auth.Principal, error) {
	name, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || name == "" {
		return "", errors.New("no bearer token")
	}
	return auth.User(name), nil
}

func (a testAuthorizer) Allowed(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) bool {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return a.z.Authorize(p, host, rt, name, op)
}

// aclAuthorizer returns a console.Authorizer that grants only acls (and
// everything to User:admin).
func aclAuthorizer(t testing.TB, acls ...auth.ACL) console.Authorizer {
	t.Helper()
	z, err := auth.NewAuthorizer(acls, []auth.Principal{auth.User("admin")}, true)
	if err != nil {
		t.Fatal(err)
	}
	return testAuthorizer{z}
}

// allow is an ACL allowing user op on the literal resource.
func allow(user string, rt auth.ResourceType, name string, op auth.Operation) auth.ACL {
	return auth.ACL{Principal: auth.User(user), Host: auth.Wildcard, ResourceType: rt, ResourceName: name,
		PatternType: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
}

func TestOverviewHidesTopicsWithoutDescribe(t *testing.T) {
	addrs := startKfakeWithTopics(t, "seen", "hidden")
	_, url := startConsole(t, addrs, console.Config{Authorizer: aclAuthorizer(t,
		allow("ann", kmsg.ACLResourceTypeTopic, "seen", kmsg.ACLOperationDescribe))})
	if status, body := get(t, url+"/ui/"); status != http.StatusUnauthorized || !strings.Contains(body, "no bearer token") {
		t.Fatalf("without credentials: %d %s", status, body)
	}
	for user, want := range map[string]string{"ann": `id="topic-count">1<`, "admin": `id="topic-count">2<`, "bob": `id="topic-count">0<`} {
		status, body := get(t, url+"/ui/", "Authorization", "Bearer "+user)
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %s in the page", user, status, want)
		}
	}
}
