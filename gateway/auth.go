package gateway

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/spoolmq/spool/internal/httpapi"
)

// Operation is what a request does to a topic.
type Operation string

// The operations scopes grant.
const (
	OpProduce Operation = "produce" // produce records, events and commands to the topic
	OpRead    Operation = "read"    // stream the topic; read the status of any request on it
)

// Authorizer decides who sends a request and whether they may do op on
// topic. It returns the principal's name, or an error: an *httpapi.Error
// with 401 (no or unknown credentials) or 403 (not allowed). Tokens is the
// gateway's own implementation; an ACL authorizer can take its place.
type Authorizer interface {
	Authorize(r *http.Request, op Operation, topic string) (principal string, err error)
}

// Tokens authorizes bearer tokens, each with scopes per topic. A scope is
// "produce:PATTERN" or "read:PATTERN", where PATTERN is a topic name, a
// prefix ending in '*', or '*' for every topic.
type Tokens struct {
	byHash map[[32]byte]*Token
}

// Token is one bearer token and what it may do.
type Token struct {
	Name   string
	Secret string
	Scopes []string
}

// NewTokens returns an authorizer for ts. It fails on an empty or repeated
// secret or name, or a malformed scope.
func NewTokens(ts []Token) (*Tokens, error) {
	a := &Tokens{byHash: map[[32]byte]*Token{}}
	names := map[string]bool{}
	for i := range ts {
		t := ts[i]
		if t.Name == "" || t.Secret == "" {
			return nil, fmt.Errorf("gateway: token %d: needs a name and a secret", i+1)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("gateway: token %q: name used twice", t.Name)
		}
		names[t.Name] = true
		for _, s := range t.Scopes {
			op, pat, ok := strings.Cut(s, ":")
			if !ok || (op != string(OpProduce) && op != string(OpRead)) || pat == "" {
				return nil, fmt.Errorf("gateway: token %q: scope %q: want produce:TOPIC or read:TOPIC (TOPIC may end in *)", t.Name, s)
			}
		}
		h := sha256.Sum256([]byte(t.Secret))
		if _, dup := a.byHash[h]; dup {
			return nil, fmt.Errorf("gateway: token %q: secret used twice", t.Name)
		}
		a.byHash[h] = &t
	}
	return a, nil
}

// ParseToken parses "NAME:SECRET:SCOPE[,SCOPE...]" (the --token flag and
// the lines of a token file), e.g. "shop:s3cret:produce:orders,read:orders".
func ParseToken(s string) (Token, error) {
	name, rest, ok1 := strings.Cut(strings.TrimSpace(s), ":")
	secret, scopes, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || name == "" || secret == "" || scopes == "" {
		return Token{}, fmt.Errorf("gateway: token %q: want NAME:SECRET:SCOPE[,SCOPE...]", redact(s))
	}
	return Token{Name: name, Secret: secret, Scopes: strings.Split(scopes, ",")}, nil
}

// ReadTokens reads a token file: one NAME:SECRET:SCOPES per line; blank
// lines and lines starting with # are skipped.
func ReadTokens(r io.Reader) ([]Token, error) {
	var out []Token
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t, err := ParseToken(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}

func redact(s string) string {
	name, _, _ := strings.Cut(s, ":")
	return name + ":…"
}

// Authorize implements Authorizer.
func (a *Tokens) Authorize(r *http.Request, op Operation, topic string) (string, error) {
	auth := r.Header.Get("Authorization")
	scheme, secret, _ := strings.Cut(auth, " ")
	if auth == "" || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		if q := r.URL.Query().Get("access_token"); q != "" && auth == "" {
			// Browsers cannot set headers on EventSource or WebSocket.
			secret = q
		} else {
			return "", &httpapi.Error{Status: http.StatusUnauthorized, Detail: "missing bearer token: send Authorization: Bearer <token>"}
		}
	}
	h := sha256.Sum256([]byte(secret))
	t, ok := a.byHash[h]
	// The map lookup is by hash; compare the secret in constant time too.
	if !ok || subtle.ConstantTimeCompare([]byte(t.Secret), []byte(secret)) != 1 {
		return "", &httpapi.Error{Status: http.StatusUnauthorized, Detail: "unknown bearer token"}
	}
	if !t.allows(op, topic) {
		return t.Name, httpapi.Errorf(http.StatusForbidden, "token %q has no %s scope for topic %q", t.Name, op, topic)
	}
	return t.Name, nil
}

func (t *Token) allows(op Operation, topic string) bool {
	for _, s := range t.Scopes {
		o, pat, _ := strings.Cut(s, ":")
		if o != string(op) {
			continue
		}
		if pat == "*" || pat == topic || (strings.HasSuffix(pat, "*") && strings.HasPrefix(topic, pat[:len(pat)-1])) {
			return true
		}
	}
	return false
}

// limiter is a token bucket per principal (per client IP without tokens).
type limiter struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*limitEntry
	sweep time.Time
}

type limitEntry struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(perSec float64, burst int) *limiter {
	if perSec <= 0 {
		return nil
	}
	return &limiter{rate: rate.Limit(perSec), burst: burst, m: map[string]*limitEntry{}}
}

// allow reports whether who may send one more request now, and if not, how
// long until it may.
func (l *limiter) allow(who string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		for k, e := range l.m {
			if now.Sub(e.seen) > 10*time.Minute {
				delete(l.m, k)
			}
		}
		l.sweep = now
	}
	e := l.m[who]
	if e == nil {
		e = &limitEntry{l: rate.NewLimiter(l.rate, l.burst)}
		l.m[who] = e
	}
	e.seen = now
	res := e.l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// authorize runs the Authorizer (if any) and the rate limit for a request
// doing op on topic, and returns the principal.
func (g *Gateway) authorize(r *http.Request, op Operation, topic string) (string, error) {
	principal := ""
	if g.cfg.Auth != nil {
		p, err := g.cfg.Auth.Authorize(r, op, topic)
		if err != nil {
			return p, err
		}
		principal = p
	}
	if g.limits == nil {
		return principal, nil
	}
	who := principal
	if who == "" {
		who, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	if ok, wait := g.limits.allow(who); !ok {
		return principal, &httpapi.Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Detail: fmt.Sprintf("rate limit of %g requests/s exceeded; retry after %v", float64(g.limits.rate), wait.Round(time.Millisecond))}
	}
	return principal, nil
}
