package lookback

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every route is described in openapi.json, and nothing else is.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil || doc.OpenAPI == "" {
		t.Fatalf("openapi.json: %v", err)
	}
	described := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			described[strings.ToUpper(method)+" "+path] = true
		}
	}
	for r := range (&Service{}).routes() {
		if !described[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
		delete(described, r)
	}
	for r := range described {
		t.Errorf("openapi.json describes %s, which is not served", r)
	}
}
