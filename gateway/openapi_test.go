package gateway_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestOpenAPI checks the served OpenAPI document against the real routes:
// every route is documented and every documented operation is routed, and a
// request to each operation gets a status code the document lists for it.
func TestOpenAPI(t *testing.T) {
	addrs := kafkatest.StartKfake(t)
	g := startGateway(t, addrs)
	resp, b := call(t, "GET", g.URL+"/api/openapi.json", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/openapi.json: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	routed := map[string]bool{}
	for _, rt := range gateway.RouteTable(g.Gateway) {
		key := strings.ToLower(rt[0]) + " " + rt[1]
		routed[key] = true
		if _, ok := doc.Paths[rt[1]][strings.ToLower(rt[0])]; !ok {
			t.Errorf("route %s %s is not in the OpenAPI document", rt[0], rt[1])
		}
	}
	ops := map[string]bool{}
	for path, methods := range doc.Paths {
		for method, op := range methods {
			if !routed[method+" "+path] {
				t.Errorf("documented %s %s is not routed", method, path)
			}
			if op.OperationID == "" || ops[op.OperationID] {
				t.Errorf("%s %s: missing or repeated operationId %q", method, path, op.OperationID)
			}
			ops[op.OperationID] = true
			url := g.URL + strings.NewReplacer("{topic}", "oa-missing", "{id}", "missing").Replace(path)
			resp, body := call(t, strings.ToUpper(method), url, "")
			if _, ok := op.Responses[strconv.Itoa(resp.StatusCode)]; !ok {
				t.Errorf("%s %s answered %d, which the document does not list: %s", method, path, resp.StatusCode, body)
			}
			if strings.Contains(string(body), "no gateway endpoint") {
				t.Errorf("%s %s is documented but fell through to the not-found handler", method, path)
			}
		}
	}
	if len(ops) < 10 {
		t.Fatalf("only %d operations documented", len(ops))
	}
}
