// Package httpauth authenticates HTTP requests as Kafka principals and
// decides them with Kafka's ACLs, so the gateway, the lookback API and the
// console grant exactly what the Kafka listener grants the same principal.
//
// A request names its principal with a bearer token (Authorization: Bearer
// TOKEN, mapped to a principal by an auth.Tokens file) or, in a browser,
// with a session cookie set by Login (the console's /ui/login page). The
// decisions come from a Decider: the broker's own live *auth.Authorizer
// inside `spool serve` (ACLs added with `spool acl add` or kadm apply to the
// next request), or an ACLSource, which reads a Kafka cluster's ACLs with
// DescribeAcls and refreshes them periodically, for the standalone
// services.
//
// Refusals are *httpapi.Error values: 401 without credentials or with an
// unknown token or session, 403 naming the principal, the operation, the
// resource and the `spool acl add` command that would allow it.
package httpauth

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/internal/httpapi"
)

// Decider answers ACL questions. *auth.Authorizer (the broker's) and
// *ACLSource implement it.
type Decider interface {
	// Authorize reports whether p, connecting from host, may do op on the
	// resource.
	Authorize(p auth.Principal, host string, rt auth.ResourceType, name string, op auth.Operation) bool
	// Explain says why p was refused: the DENY that matched, or the grant
	// that would allow it.
	Explain(p auth.Principal, host string, rt auth.ResourceType, name string, op auth.Operation) string
}

// Config configures an Authenticator. Tokens and ACLs are required; the
// zero value of every other field is its default.
type Config struct {
	// Tokens maps bearer tokens to principals (required).
	Tokens *auth.Tokens
	// ACLs decides what a principal may do (required).
	ACLs Decider
	// CookieName is the name of the session cookie (default
	// "spool_session").
	CookieName string
	// CookiePath is the path the session cookie is sent for (default "/").
	CookiePath string
	// SessionTTL is how long a session lasts after Login (default 12h).
	SessionTTL time.Duration
	// MaxSessions bounds the sessions kept; at the bound Login ends the
	// oldest (default 10000).
	MaxSessions int
	// Logger receives refusals at debug level and logins at info (default:
	// discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Authenticator authenticates requests and decides them with Config.ACLs.
// It is safe for concurrent use.
type Authenticator struct {
	cfg      Config
	sessions *sessions
}

// New returns an Authenticator for cfg.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Tokens == nil || cfg.ACLs == nil {
		return nil, fmt.Errorf("httpauth: Tokens and ACLs are required")
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "spool_session"
	}
	if cfg.CookiePath == "" {
		cfg.CookiePath = "/"
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authenticator{cfg: cfg, sessions: newSessions(cfg.MaxSessions)}, nil
}

// Identity is who sends a request: the principal and the host its ACLs
// are matched against (the client's IP address).
type Identity struct {
	Principal auth.Principal
	Host      string
	// Token is the bearer token the principal authenticated with (kept in
	// memory with a browser session), so a proxy to a remote Spool API
	// can send it on; "" when unknown.
	Token string
}

type identityKey struct{}

// NewContext returns ctx carrying id. A request whose context carries an
// identity is authenticated as it without credentials: the console passes
// the principal it authenticated on to the lookback and gateway handlers it
// calls in process. Only code in the process can set it.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity NewContext put into ctx.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// unauthorized is the 401 of a request without valid credentials.
func unauthorized(detail string) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusUnauthorized, Detail: detail}
}

// Authenticate returns who sends r: the identity in its context, else the
// principal of its bearer token, else that of its session cookie. Without
// any, or with an unknown token or session, the error is a 401
// *httpapi.Error.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	if id, ok := FromContext(r.Context()); ok {
		return id, nil
	}
	host := remoteHost(r)
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return Identity{}, unauthorized("httpauth: Authorization must be \"Bearer <token>\"")
		}
		p, ok := a.cfg.Tokens.Principal(strings.TrimSpace(token))
		if !ok {
			return Identity{}, unauthorized("httpauth: unknown bearer token")
		}
		return Identity{Principal: p, Host: host, Token: strings.TrimSpace(token)}, nil
	}
	if c, err := r.Cookie(a.cfg.CookieName); err == nil && c.Value != "" {
		ss, ok := a.sessions.get(c.Value, a.cfg.Now())
		if !ok {
			return Identity{}, unauthorized("httpauth: the session has expired or ended; log in again")
		}
		return Identity{Principal: ss.principal, Host: host, Token: ss.token}, nil
	}
	if q := r.URL.Query().Get("access_token"); q != "" {
		// Browsers cannot set headers on EventSource or WebSocket.
		p, ok := a.cfg.Tokens.Principal(q)
		if !ok {
			return Identity{}, unauthorized("httpauth: unknown bearer token")
		}
		return Identity{Principal: p, Host: host, Token: q}, nil
	}
	return Identity{}, unauthorized("httpauth: missing bearer token: send Authorization: Bearer <token>")
}

// Principal is Authenticate's principal (console.Authorizer).
func (a *Authenticator) Principal(r *http.Request) (auth.Principal, error) {
	id, err := a.Authenticate(r)
	return id.Principal, err
}

// host is the ACL host of r's sender: the context's identity's, else the
// client address.
func host(r *http.Request) string {
	if id, ok := FromContext(r.Context()); ok {
		return id.Host
	}
	return remoteHost(r)
}

func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// Allowed reports whether p, sending r, may do op on the resource.
func (a *Authenticator) Allowed(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) bool {
	return a.cfg.ACLs.Authorize(p, host(r), rt, name, op)
}

// Explain says why p, sending r, may not do op on the resource.
func (a *Authenticator) Explain(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) string {
	return a.cfg.ACLs.Explain(p, host(r), rt, name, op)
}

// Check returns nil when p may do op on the resource, else a 403
// *httpapi.Error naming what is missing.
func (a *Authenticator) Check(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) error {
	if a.Allowed(r, p, rt, name, op) {
		return nil
	}
	why := a.Explain(r, p, rt, name, op)
	a.cfg.Logger.Debug("httpauth: request refused by ACLs", "principal", string(p), "host", host(r),
		"method", r.Method, "path", r.URL.Path, "resource", rt.String()+":"+name, "operation", op.String(), "why", why)
	return Forbidden(p, rt, name, op, why)
}

// Forbidden is the 403 of a refusal: who, what, and why (Explain's text).
func Forbidden(p auth.Principal, rt auth.ResourceType, name string, op auth.Operation, why string) *httpapi.Error {
	return httpapi.Errorf(http.StatusForbidden, "%s may not %s %s %q: %s", p, op, rt, name, why)
}
