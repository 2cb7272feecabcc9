package lookback_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/lookback"
)

func topicACL(user, topic string, op auth.Operation) auth.ACL {
	return auth.ACL{Principal: auth.User(user), Host: auth.Wildcard, ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: topic,
		PatternType: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
}

// authCall sends a request with alice's token (none if token is "") and
// returns the status and body.
func authCall(t *testing.T, method, url, token, body string) (int, string) {
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s %s: 401 without WWW-Authenticate", method, url)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", method, url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(b)
}

// TestAPIAuthorization: with an Authorizer the API answers 401 without a
// token, leaves events of topics without Read out of searches and flows,
// refuses an event, a search or a replay the ACLs do not allow with a 403
// naming the grant, and follows an ACL added to the live authorizer on
// the next request.
func TestAPIAuthorization(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "open", 1)
		kafkatest.CreateTopic(t, addrs, "secret", 1)
		z, err := auth.NewAuthorizer([]auth.ACL{topicACL("alice", "open", kmsg.ACLOperationRead)}, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		tk, _ := auth.ParseTokens(strings.NewReader("alice-token-0123456789 User:alice\n"))
		ha, err := httpauth.New(httpauth.Config{Tokens: tk, ACLs: z})
		if err != nil {
			t.Fatal(err)
		}
		svc, st := startService(t, addrs, func(c *lookback.Config) { c.Authorizer = ha })
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		// One flow across both topics: an order, then a secret payment.
		produce(t, addrs, ceRec(t, "open", "k1", "order.placed", "flow-1", map[string]int{"n": 1}),
			ceRec(t, "secret", "k1", "payment.taken", "flow-1", map[string]int{"n": 2}),
			ceRec(t, "open", "k2", "order.placed", "flow-2", map[string]int{"n": 3}))
		waitEvents(t, st, 3)
		const alice = "alice-token-0123456789"
		api := srv.URL + "/api/lookback"

		if code, body := authCall(t, "GET", api+"/events", "", ""); code != 401 || !strings.Contains(body, "missing bearer token") {
			t.Fatalf("search without a token: %d %s", code, body)
		}
		if code, body := authCall(t, "GET", api+"/events", "nope-0123456789abcdef", ""); code != 401 || !strings.Contains(body, "unknown bearer token") {
			t.Fatalf("search with an unknown token: %d %s", code, body)
		}
		if code, _ := authCall(t, "GET", api+"/openapi.json", "", ""); code != 200 {
			t.Fatalf("openapi.json without a token: %d", code)
		}
		var res lookback.SearchResponse
		code, body := authCall(t, "GET", api+"/events", alice, "")
		if code != 200 || json.Unmarshal([]byte(body), &res) != nil {
			t.Fatalf("search: %d %s", code, body)
		}
		if len(res.Events) != 2 || res.Events[0].Topic != "open" || res.Events[1].Topic != "open" {
			t.Fatalf("search shows %d events (%s), want the 2 of open only", len(res.Events), body)
		}
		// A page of one event: the secret one in the middle is skipped, not
		// answered as an empty page.
		var p1, p2 lookback.SearchResponse
		_, body = authCall(t, "GET", api+"/events?order=oldest&limit=1", alice, "")
		json.Unmarshal([]byte(body), &p1)
		_, body = authCall(t, "GET", api+"/events?order=oldest&limit=1&cursor="+p1.Next, alice, "")
		json.Unmarshal([]byte(body), &p2)
		if len(p1.Events) != 1 || len(p2.Events) != 1 || p2.Events[0].Topic != "open" || p2.Events[0].CorrelationID != "flow-2" {
			t.Fatalf("paged search: %+v then %s", p1.Events, body)
		}
		code, body = authCall(t, "GET", api+"/events?topic=secret", alice, "")
		if code != 403 || !strings.Contains(body, `User:alice may not READ TOPIC \"secret\"`) ||
			!strings.Contains(body, "spool acl add --allow User:alice --operation READ --topic secret") {
			t.Fatalf("search of secret: %d %s", code, body)
		}
		if code, body = authCall(t, "GET", api+"/events/secret/0/0", alice, ""); code != 403 {
			t.Fatalf("an event of secret: %d %s", code, body)
		}
		if code, body = authCall(t, "GET", api+"/events/open/0/0", alice, ""); code != 200 {
			t.Fatalf("an event of open: %d %s", code, body)
		}
		var f lookback.Flow
		code, body = authCall(t, "GET", api+"/flows/flow-1", alice, "")
		if code != 200 || json.Unmarshal([]byte(body), &f) != nil || len(f.Events) != 1 || f.Events[0].Event.Topic != "open" {
			t.Fatalf("flow-1: %d %s, want the open event only", code, body)
		}
		for _, n := range f.Roots {
			if n.Topic == "secret" {
				t.Fatalf("the causation tree shows a secret event: %s", body)
			}
		}
		if code, body = authCall(t, "GET", api+"/stats", alice, ""); code != 403 || !strings.Contains(body, "--cluster") {
			t.Fatalf("stats without Describe on the cluster: %d %s", code, body)
		}
		// Replays: Read on the source, Write on the target.
		replay := `{"filter":{"topic":"secret"},"to_topic":"open","dry_run":true}`
		if code, body = authCall(t, "POST", api+"/replays", alice, replay); code != 403 || !strings.Contains(body, "READ TOPIC") {
			t.Fatalf("replay of secret: %d %s", code, body)
		}
		replay = `{"filter":{"topic":"open"},"to_topic":"copy","dry_run":true}`
		if code, body = authCall(t, "POST", api+"/replays", alice, replay); code != 403 || !strings.Contains(body, `WRITE TOPIC \"copy\"`) {
			t.Fatalf("replay into copy without Write: %d %s", code, body)
		}
		if code, body = authCall(t, "POST", api+"/replays", alice, `{"filter":{},"to_topic":"copy","dry_run":true}`); code != 403 || !strings.Contains(body, `READ TOPIC \"*\"`) {
			t.Fatalf("replay of every topic: %d %s", code, body)
		}
		if err := z.Add(nil, topicACL("alice", "copy", kmsg.ACLOperationWrite), topicACL("alice", "secret", kmsg.ACLOperationRead)); err != nil {
			t.Fatal(err)
		}
		if code, body = authCall(t, "POST", api+"/replays", alice, replay); code != 200 || !strings.Contains(body, `"total":2`) {
			t.Fatalf("replay dry run once allowed: %d %s", code, body)
		}
		if code, body = authCall(t, "GET", api+"/events", alice, ""); code != 200 || strings.Count(body, `"topic":`) != 3 {
			t.Fatalf("search once Read on secret is granted: %d %s", code, body)
		}
	})
}
