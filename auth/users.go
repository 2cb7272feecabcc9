package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sort"
	"sync"

	"github.com/xdg-go/stringprep"
)

// The SCRAM mechanisms, named as SASL and Kafka name them.
const (
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// MinIterations and DefaultIterations bound SCRAM's PBKDF2 iterations:
// Kafka's minimum and its tools' default are 4096.
const (
	MinIterations     = 4096
	DefaultIterations = 4096
	MaxIterations     = 16384 // Kafka's maximum
)

// Credential is one user's stored SCRAM credential for one mechanism:
// never the password, only the salt, the iteration count and the keys
// SCRAM derives from the salted password (RFC 5802).
type Credential struct {
	Mechanism  string `json:"mechanism"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// ErrAuthFailed is what every failed authentication reports, whatever the
// cause (unknown user, wrong password, wrong mechanism for the user), so a
// client learns nothing about which users exist.
var ErrAuthFailed = errors.New("authentication failed: invalid username or password, or the mechanism is not enabled for the user")

func mechHash(mech string) (func() hash.Hash, error) {
	switch mech {
	case ScramSHA256:
		return sha256.New, nil
	case ScramSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("auth: mechanism %q: want %s or %s", mech, ScramSHA256, ScramSHA512)
}

// SaltedPassword is SCRAM's Hi(SASLprep(password), salt, iterations): what
// a KIP-554 AlterUserScramCredentials upsertion carries.
func SaltedPassword(mech, password string, salt []byte, iterations int) ([]byte, error) {
	h, err := mechHash(mech)
	if err != nil {
		return nil, err
	}
	prepped, err := stringprep.SASLprep.Prepare(password)
	if err != nil {
		return nil, fmt.Errorf("auth: password: %w", err)
	}
	return pbkdf2.Key(h, prepped, salt, iterations, h().Size())
}

// NewCredential derives the stored credential from a salted password.
func NewCredential(mech string, iterations int, salt, salted []byte) (Credential, error) {
	h, err := mechHash(mech)
	if err != nil {
		return Credential{}, err
	}
	if iterations < MinIterations || iterations > MaxIterations {
		return Credential{}, fmt.Errorf("auth: %d iterations: want %d to %d", iterations, MinIterations, MaxIterations)
	}
	if len(salt) == 0 || len(salted) != h().Size() {
		return Credential{}, fmt.Errorf("auth: %s needs a salt and a %d-byte salted password", mech, h().Size())
	}
	mac := func(key []byte, s string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	sum := h()
	sum.Write(clientKey)
	return Credential{
		Mechanism: mech, Iterations: iterations, Salt: slices.Clone(salt),
		StoredKey: sum.Sum(nil), ServerKey: mac(salted, "Server Key"),
	}, nil
}

// Users holds the SCRAM credentials of every user: at most one per
// mechanism, and both mechanisms may be set for one user. It is safe for
// concurrent use; its JSON form is what the broker persists.
type Users struct {
	mu    sync.RWMutex
	creds map[string]map[string]Credential // user -> mechanism -> credential
}

// NewUsers returns an empty set.
func NewUsers() *Users { return &Users{creds: map[string]map[string]Credential{}} }

// SetPassword sets user's credential for mech from a password, with a
// fresh random salt and iterations (0: DefaultIterations).
func (u *Users) SetPassword(user, mech, password string, iterations int) error {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	salt := make([]byte, 24)
	rand.Read(salt)
	salted, err := SaltedPassword(mech, password, salt, iterations)
	if err != nil {
		return err
	}
	return u.SetSalted(user, mech, iterations, salt, salted)
}

// SetSalted sets user's credential for mech from a salted password, as
// AlterUserScramCredentials upserts it.
func (u *Users) SetSalted(user, mech string, iterations int, salt, salted []byte) error {
	if user == "" {
		return errors.New("auth: empty user name")
	}
	c, err := NewCredential(mech, iterations, salt, salted)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.creds[user] == nil {
		u.creds[user] = map[string]Credential{}
	}
	u.creds[user][mech] = c
	return nil
}

// ErrNoCredential is returned by Delete for a user without a credential of
// that mechanism (Kafka's RESOURCE_NOT_FOUND).
var ErrNoCredential = errors.New("auth: no such credential")

// Delete removes user's credential for mech (every mechanism if mech is
// empty).
func (u *Users) Delete(user, mech string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := u.creds[user]
	if _, ok := m[mech]; !ok && (mech != "" || len(m) == 0) {
		return fmt.Errorf("%w: user %q, mechanism %q", ErrNoCredential, user, mech)
	}
	if mech == "" {
		delete(u.creds, user)
		return nil
	}
	delete(m, mech)
	if len(m) == 0 {
		delete(u.creds, user)
	}
	return nil
}

// Lookup returns user's credential for mech.
func (u *Users) Lookup(user, mech string) (Credential, bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	c, ok := u.creds[user][mech]
	return c, ok
}

// UserInfo is what DescribeUserScramCredentials reports of a user: the
// mechanisms and iterations, never the keys.
type UserInfo struct {
	User       string
	Mechanisms map[string]int // mechanism -> iterations
}

// List returns every user, sorted by name.
func (u *Users) List() []UserInfo {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]UserInfo, 0, len(u.creds))
	for name, m := range u.creds {
		ui := UserInfo{User: name, Mechanisms: map[string]int{}}
		for mech, c := range m {
			ui.Mechanisms[mech] = c.Iterations
		}
		out = append(out, ui)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// VerifyPassword reports whether password is user's, checked against any
// of the user's SCRAM credentials (PLAIN authenticates this way, so one
// credential store serves every mechanism). The comparison is constant
// time.
func (u *Users) VerifyPassword(user, password string) bool {
	u.mu.RLock()
	var cs []Credential
	for _, c := range u.creds[user] {
		cs = append(cs, c)
	}
	u.mu.RUnlock()
	for _, c := range cs {
		salted, err := SaltedPassword(c.Mechanism, password, c.Salt, c.Iterations)
		if err != nil {
			continue
		}
		want, err := NewCredential(c.Mechanism, c.Iterations, c.Salt, salted)
		if err == nil && hmac.Equal(want.StoredKey, c.StoredKey) {
			return true
		}
	}
	return false
}

type usersJSON struct {
	Users map[string][]Credential `json:"users"`
}

// MarshalJSON encodes every credential.
func (u *Users) MarshalJSON() ([]byte, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	j := usersJSON{Users: map[string][]Credential{}}
	for name, m := range u.creds {
		for _, c := range m {
			j.Users[name] = append(j.Users[name], c)
		}
		sort.Slice(j.Users[name], func(a, b int) bool { return j.Users[name][a].Mechanism < j.Users[name][b].Mechanism })
	}
	return json.Marshal(j)
}

// UnmarshalJSON replaces the set with the one encoded in b, checking each
// credential.
func (u *Users) UnmarshalJSON(b []byte) error {
	var j usersJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("auth: users: %w", err)
	}
	creds := map[string]map[string]Credential{}
	for name, cs := range j.Users {
		for _, c := range cs {
			h, err := mechHash(c.Mechanism)
			if err != nil {
				return fmt.Errorf("auth: user %q: %w", name, err)
			}
			if len(c.StoredKey) != h().Size() || len(c.ServerKey) != h().Size() || len(c.Salt) == 0 || c.Iterations < 1 {
				return fmt.Errorf("auth: user %q: damaged %s credential", name, c.Mechanism)
			}
			if creds[name] == nil {
				creds[name] = map[string]Credential{}
			}
			creds[name][c.Mechanism] = c
		}
	}
	u.mu.Lock()
	u.creds = creds
	u.mu.Unlock()
	return nil
}
