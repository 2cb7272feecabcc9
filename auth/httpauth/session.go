package httpauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/spoolmq/spool/auth"
)

// Browser sessions: Login checks a token once and sets a cookie holding a
// random session id (32 bytes from crypto/rand); the server keeps only the
// id's SHA-256 with the principal (and the token, for proxies to remote
// APIs), in memory, so a restart ends every session and the token never
// travels again after login. The cookie is
// HttpOnly (no script reads it), SameSite=Strict (no other site's page
// sends it, which is what keeps forms safe from cross-site requests) and
// Secure when the request came over TLS.

type session struct {
	principal auth.Principal
	token     string
	expires   time.Time
}

type sessions struct {
	max int
	mu  struct {
		sync.Mutex
		m map[[32]byte]session
	}
}

func newSessions(max int) *sessions {
	s := &sessions{max: max}
	s.mu.m = map[[32]byte]session{}
	return s
}

func (s *sessions) get(id string, now time.Time) (session, bool) {
	h := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.mu.m[h]
	if !ok {
		return session{}, false
	}
	if !now.Before(ss.expires) {
		delete(s.mu.m, h)
		return session{}, false
	}
	return ss, true
}

func (s *sessions) add(ss session, now time.Time) string {
	var raw [32]byte
	rand.Read(raw[:])
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.m) >= s.max {
		var oldest [32]byte
		first := true
		for h, ss := range s.mu.m {
			if !now.Before(ss.expires) {
				delete(s.mu.m, h)
				continue
			}
			if first || ss.expires.Before(s.mu.m[oldest].expires) {
				oldest, first = h, false
			}
		}
		if len(s.mu.m) >= s.max {
			delete(s.mu.m, oldest)
		}
	}
	s.mu.m[sha256.Sum256([]byte(id))] = ss
	return id
}

func (s *sessions) remove(id string) {
	h := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.m, h)
}

// Login checks token and, when it is known, starts a session for its
// principal and sets the session cookie on w. An unknown token is a 401
// *httpapi.Error and sets nothing.
func (a *Authenticator) Login(w http.ResponseWriter, r *http.Request, token string) (auth.Principal, error) {
	p, ok := a.cfg.Tokens.Principal(token)
	if !ok {
		a.cfg.Logger.Info("httpauth: login refused: unknown token", "host", remoteHost(r))
		return "", unauthorized("httpauth: unknown token")
	}
	now := a.cfg.Now()
	exp := now.Add(a.cfg.SessionTTL)
	id := a.sessions.add(session{principal: p, token: token, expires: exp}, now)
	http.SetCookie(w, &http.Cookie{Name: a.cfg.CookieName, Value: id, Path: a.cfg.CookiePath,
		Expires: exp, MaxAge: int(a.cfg.SessionTTL / time.Second), HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	a.cfg.Logger.Info("httpauth: login", "principal", string(p), "host", remoteHost(r))
	return p, nil
}

// Logout ends r's session, if any, and clears the cookie.
func (a *Authenticator) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(a.cfg.CookieName); err == nil {
		a.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: a.cfg.CookieName, Value: "", Path: a.cfg.CookiePath, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}
