package console

import (
	"net/http"
	"strings"

	"github.com/spoolmq/spool/internal/httpapi"
)

// The login page (BasePath+"login"): with a SessionAuthorizer the browser
// pastes a token once and gets a session cookie (HttpOnly, SameSite=Strict,
// Secure over TLS); logout ends the session. Without one (no
// Authorizer, or one that only reads request headers) the page says how
// this console authenticates.

type loginData struct {
	Enabled bool   // the Authorizer starts sessions
	Off     bool   // no Authorizer: nobody needs to log in
	Next    string // where to go after login, below BasePath
	Error   string
}

// safeNext keeps a post-login destination only when it is a path of the
// console (no open redirect to another site).
func (c *Console) safeNext(next string) string {
	if !strings.HasPrefix(next, c.cfg.BasePath) || strings.HasPrefix(next, "//") || strings.Contains(next, `\`) ||
		strings.HasPrefix(next, c.cfg.BasePath+"login") {
		return c.cfg.BasePath
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	_, enabled := c.cfg.Authorizer.(SessionAuthorizer)
	d := loginData{Enabled: enabled, Off: c.cfg.Authorizer == nil, Next: c.safeNext(r.URL.Query().Get("next"))}
	c.render(w, r, http.StatusOK, "login", "Log in", "login", d)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	sa, ok := c.cfg.Authorizer.(SessionAuthorizer)
	if !ok {
		c.fail(w, r, httpapi.Errorf(http.StatusNotFound, "console: this console has no login: it authenticates with the Authorization header, or not at all"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: login form: %v", err))
		return
	}
	next := c.safeNext(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		c.render(w, r, http.StatusBadRequest, "login", "Log in", "login", loginData{Enabled: true, Next: next, Error: "Paste your token."})
		return
	}
	if _, err := sa.Login(w, r, token); err != nil {
		c.render(w, r, http.StatusUnauthorized, "login", "Log in", "login",
			loginData{Enabled: true, Next: next, Error: "Unknown token: check it against the token file of the server."})
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if sa, ok := c.cfg.Authorizer.(SessionAuthorizer); ok {
		sa.Logout(w, r)
	}
	http.Redirect(w, r, c.cfg.BasePath+"login", http.StatusSeeOther)
}
