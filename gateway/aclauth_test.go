package gateway_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestACLAuth: with ACLAuth the principal of an HTTP token needs Write on
// the topic to produce and Read to stream it, decided by the ACL engine;
// the scoped gateway tokens given next to it keep their scopes.
func TestACLAuth(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "a", 1)
		kafkatest.CreateTopic(t, addrs, "b", 1)
		z, err := auth.NewAuthorizer([]auth.ACL{{Principal: auth.User("alice"), Host: "*",
			ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "a", PatternType: kmsg.ACLResourcePatternTypeLiteral,
			Operation: kmsg.ACLOperationWrite, Permission: kmsg.ACLPermissionTypeAllow}}, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		tk, err := auth.ParseTokens(strings.NewReader("alice-token-0123456789 User:alice\n"))
		if err != nil {
			t.Fatal(err)
		}
		ha, err := httpauth.New(httpauth.Config{Tokens: tk, ACLs: z})
		if err != nil {
			t.Fatal(err)
		}
		scoped, err := gateway.NewTokens([]gateway.Token{{Name: "shop", Secret: "shop-secret", Scopes: []string{"produce:b"}}})
		if err != nil {
			t.Fatal(err)
		}
		g := startGateway(t, addrs, func(c *gateway.Config) { c.Auth = gateway.ACLAuth(ha, scoped) })
		rec := `{"records":[{"value":1}]}`
		alice := []string{"Authorization", "Bearer alice-token-0123456789"}
		resp, b := call(t, "POST", g.URL+"/api/topics/a/records", rec, alice...)
		if resp.StatusCode != 200 {
			t.Fatalf("alice produces to a: %d %s", resp.StatusCode, b)
		}
		resp, b = call(t, "POST", g.URL+"/api/topics/b/records", rec, alice...)
		wantProblem(t, resp, b, 403, `User:alice may not WRITE TOPIC "b": no ACL allows it; the grant that would: spool acl add --allow User:alice --operation WRITE --topic b`)
		resp, b = call(t, "GET", g.URL+"/api/topics/a/events", "", alice...)
		wantProblem(t, resp, b, 403, "spool acl add --allow User:alice --operation READ --topic a")
		resp, b = call(t, "POST", g.URL+"/api/topics/a/records", rec)
		wantProblem(t, resp, b, 401, "missing bearer token")
		resp, b = call(t, "POST", g.URL+"/api/topics/a/records", rec, "Authorization", "Bearer unknown-0123456789abc")
		wantProblem(t, resp, b, 401, "unknown bearer token")
		// The scoped token: its scope, not the ACLs.
		resp, b = call(t, "POST", g.URL+"/api/topics/b/records", rec, "Authorization", "Bearer shop-secret")
		if resp.StatusCode != 200 {
			t.Fatalf("the scoped token produces to b: %d %s", resp.StatusCode, b)
		}
		resp, b = call(t, "POST", g.URL+"/api/topics/a/records", rec, "Authorization", "Bearer shop-secret")
		wantProblem(t, resp, b, 403, `no produce scope for topic "a"`)
		// An ACL added to the live authorizer decides the next request.
		if err := z.Add(nil, auth.ACL{Principal: auth.User("alice"), Host: "*", ResourceType: kmsg.ACLResourceTypeTopic,
			ResourceName: "b", PatternType: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationWrite,
			Permission: kmsg.ACLPermissionTypeAllow}); err != nil {
			t.Fatal(err)
		}
		if resp, b = call(t, "POST", g.URL+"/api/topics/b/records", rec, alice...); resp.StatusCode != 200 {
			t.Fatalf("alice produces to b after the ACL: %d %s", resp.StatusCode, b)
		}
		if na, nb := len(kafkatest.ReadAll(t, addrs, "a")), len(kafkatest.ReadAll(t, addrs, "b")); na != 1 || nb != 2 {
			t.Fatalf("records: a %d (want 1), b %d (want 2): a refused request produced, or an allowed one did not", na, nb)
		}
	})
}
