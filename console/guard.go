package console

import (
	"context"
	"net/http"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/internal/httpapi"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Authorizer authenticates the console's requests and answers Kafka's ACL
// questions for their principal, so the console shows and allows what the
// principal's ACLs grant on the Kafka listener.
type Authorizer interface {
	// Principal returns the principal of r, or an error when r carries no
	// or unknown credentials (answered 401).
	Principal(r *http.Request) (auth.Principal, error)
	// Allowed reports whether p, sending r, may do op on the resource.
	Allowed(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) bool
}

type principalKey struct{}

// authenticate resolves the principal of every request when an Authorizer
// is set; a request without one is refused with 401, except for the static
// files.
func (c *Console) authenticate(next http.Handler) http.Handler {
	if c.cfg.Authorizer == nil {
		return next
	}
	static := c.cfg.BasePath + "static/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) >= len(static) && r.URL.Path[:len(static)] == static {
			next.ServeHTTP(w, r)
			return
		}
		p, err := c.cfg.Authorizer.Principal(r)
		if err != nil {
			c.fail(w, r, httpapi.Errorf(http.StatusUnauthorized, "console: %v", err))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// principal is the authenticated principal of r ("" without an
// Authorizer).
func principal(r *http.Request) auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(auth.Principal)
	return p
}

func (c *Console) principalName(r *http.Request) string { return string(principal(r)) }

// mayRead checks that r's principal may do op (Describe, Read,
// DescribeConfigs) on the resource: nil, or a 403 naming the missing grant.
func (c *Console) mayRead(r *http.Request, rt auth.ResourceType, name string, op auth.Operation) error {
	if c.cfg.Authorizer == nil || c.cfg.Authorizer.Allowed(r, principal(r), rt, name, op) {
		return nil
	}
	return httpapi.Errorf(http.StatusForbidden, "console: %s may not %s %s %q (no ACL grants it)", principal(r), op, rt, name)
}

// mayWrite is mayRead for a change (create, delete, produce, reset
// offsets, redrive): it is also refused in read-only mode.
func (c *Console) mayWrite(r *http.Request, rt auth.ResourceType, name string, op auth.Operation) error {
	if c.cfg.ReadOnly {
		return httpapi.Errorf(http.StatusForbidden, "console: read-only mode: %s %s %q refused (the console runs with --console-read-only)", op, rt, name)
	}
	return c.mayRead(r, rt, name, op)
}

// visible reports whether r's principal may see the resource (Describe).
func (c *Console) visible(r *http.Request, rt auth.ResourceType, name string) bool {
	return c.mayRead(r, rt, name, kmsg.ACLOperationDescribe) == nil
}

// The ACL resource types the pages check.
const (
	topicResource   = kmsg.ACLResourceTypeTopic
	groupResource   = kmsg.ACLResourceTypeGroup
	clusterResource = kmsg.ACLResourceTypeCluster
)
