package console

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/internal/httpapi"
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

// SessionAuthorizer is an Authorizer that can also start and end browser
// sessions (*httpauth.Authenticator): with one, the console serves a login
// page (BasePath+"login": paste a token) and a logout action, and a page
// loaded without credentials is sent to the login page.
type SessionAuthorizer interface {
	Authorizer
	// Login checks token and sets the session cookie on w.
	Login(w http.ResponseWriter, r *http.Request, token string) (auth.Principal, error)
	// Logout ends r's session and clears its cookie.
	Logout(w http.ResponseWriter, r *http.Request)
}

// explainer is implemented by Authorizers that can say why a principal was
// refused (the DENY that matched or the grant that would allow it).
type explainer interface {
	Explain(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) string
}

type principalKey struct{}

// authenticate resolves the principal of every request when an Authorizer
// is set; a request without one is refused with 401 (a page load is sent
// to the login page when there is one), except for the static files and
// the login page itself. The principal goes into the request's context
// twice: for the pages (principal), and as an httpauth identity, so the
// lookback and gateway handlers the console calls in process with that
// context decide for the same principal.
func (c *Console) authenticate(next http.Handler) http.Handler {
	if c.cfg.Authorizer == nil {
		return next
	}
	static, login := c.cfg.BasePath+"static/", c.cfg.BasePath+"login"
	_, sessions := c.cfg.Authorizer.(SessionAuthorizer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, static) || r.URL.Path == login {
			next.ServeHTTP(w, r)
			return
		}
		id, err := c.identify(r)
		if err != nil {
			if sessions && r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" && !wantsJSON(r) {
				http.Redirect(w, r, login+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="spool"`)
			c.fail(w, r, httpapi.Errorf(http.StatusUnauthorized, "console: %v", err))
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, id.Principal)
		next.ServeHTTP(w, r.WithContext(httpauth.NewContext(ctx, id)))
	})
}

// identify authenticates r: with the Authorizer's Authenticate when it has
// one (*httpauth.Authenticator: the identity keeps the token, for proxies),
// else its Principal.
func (c *Console) identify(r *http.Request) (httpauth.Identity, error) {
	if ia, ok := c.cfg.Authorizer.(interface {
		Authenticate(*http.Request) (httpauth.Identity, error)
	}); ok {
		return ia.Authenticate(r)
	}
	p, err := c.cfg.Authorizer.Principal(r)
	if err != nil {
		return httpauth.Identity{}, err
	}
	id := httpauth.Identity{Principal: p, Host: remoteHost(r)}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		id.Token = strings.TrimSpace(h[7:])
	}
	return id, nil
}

func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
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
	why := "no ACL allows it; the grant that would: " + auth.GrantCommand(principal(r), rt, name, op)
	if e, ok := c.cfg.Authorizer.(explainer); ok {
		why = e.Explain(r, principal(r), rt, name, op)
	}
	return httpapi.Errorf(http.StatusForbidden, "console: %s may not %s %s %q: %s", principal(r), op, rt, name, why)
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

// navNeeds says, by the nav entry's title, what a principal must be allowed
// for the entry to show: a page about topics needs Describe on one topic
// at least, the groups page on one group; the archive and request pages
// Read on one topic. Entries not listed always show.
var navNeeds = map[string]func(c *Console, r *http.Request, s *sample) bool{
	"Topics":       anyTopic(kmsg.ACLOperationDescribe),
	"Messages":     anyTopic(kmsg.ACLOperationRead),
	"Dead letters": anyTopic(kmsg.ACLOperationRead),
	"Lookback":     anyTopic(kmsg.ACLOperationRead),
	"Requests":     anyTopic(kmsg.ACLOperationRead),
	"Groups": func(c *Console, r *http.Request, s *sample) bool {
		for g := range s.GroupCommitted {
			if c.mayRead(r, groupResource, g, kmsg.ACLOperationDescribe) == nil {
				return true
			}
		}
		return c.mayRead(r, clusterResource, "kafka-cluster", kmsg.ACLOperationDescribe) == nil
	},
}

func anyTopic(op auth.Operation) func(c *Console, r *http.Request, s *sample) bool {
	return func(c *Console, r *http.Request, s *sample) bool {
		for t := range s.TopicEnds {
			if c.mayRead(r, topicResource, t, op) == nil {
				return true
			}
		}
		return c.mayRead(r, topicResource, auth.Wildcard, op) == nil
	}
}

// navFor is the navigation bar for r's principal: nothing before it is
// known (the login page), the entries it may use with an Authorizer
// (decided on the latest sample of the cluster's topics and groups), all
// of them without. The pages check every resource themselves: the nav
// only spares a principal the pages that would show it nothing.
func (c *Console) navFor(r *http.Request) []navItem {
	if c.cfg.Authorizer == nil {
		return nav
	}
	if principal(r) == "" {
		return nil
	}
	// Before the first sample only a wildcard ACL (or a super user) shows
	// the entries that need one resource.
	last := &sample{}
	if smps := c.sampler.samples(); len(smps) > 0 {
		last = &smps[len(smps)-1]
	}
	out := make([]navItem, 0, len(nav))
	for _, it := range nav {
		if need := navNeeds[it.Title]; need == nil || need(c, r, last) {
			out = append(out, it)
		}
	}
	return out
}
