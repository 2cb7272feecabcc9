package gateway

import (
	_ "embed"
	"net/http"
)

// openapiJSON is the OpenAPI 3.1 description of the routes; TestOpenAPI
// checks it against routes().
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI 3.1 document of the gateway's API.
func OpenAPI() []byte { return openapiJSON }

func (g *Gateway) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapiJSON)
	return nil
}
