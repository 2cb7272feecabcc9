package auth

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/xdg-go/scram"
)

// Mechanisms are the SASL mechanisms Spool serves, in the order
// SaslHandshake lists them.
var Mechanisms = []string{ScramSHA512, ScramSHA256, "PLAIN"}

// maxSASLMessage bounds one SASL message: a PLAIN message is three short
// strings, a SCRAM one a few hundred bytes.
const maxSASLMessage = 8 << 10

// Session is the server side of one SASL exchange. Step takes the
// client's next message and returns the server's answer; done is set once
// the exchange has ended successfully, and then Principal is the
// authenticated principal. Any error ends the exchange: the connection is
// to be closed after the error is reported (its message is safe to send).
type Session interface {
	Step(in []byte) (out []byte, done bool, err error)
	Principal() Principal
	Mechanism() string
}

// NewSession starts the server side of an exchange of mech, authenticating
// against u.
func (u *Users) NewSession(mech string) (Session, error) {
	switch mech {
	case "PLAIN":
		return &plainSession{users: u}, nil
	case ScramSHA256, ScramSHA512:
		return newScramSession(u, mech)
	}
	return nil, fmt.Errorf("auth: unsupported SASL mechanism %q; enabled: %v", mech, Mechanisms)
}

// IsMechanism reports whether mech is one Spool serves.
func IsMechanism(mech string) bool { return slices.Contains(Mechanisms, mech) }

type plainSession struct {
	users *Users
	user  string
	done  bool
}

// ParsePlain parses a SASL PLAIN message (RFC 4616): [authzid] NUL authcid
// NUL passwd. An authorization identity other than the authentication one
// is refused, as Kafka does.
func ParsePlain(msg []byte) (user, password string, err error) {
	if len(msg) > maxSASLMessage {
		return "", "", errors.New("PLAIN message too long")
	}
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", errors.New("malformed PLAIN message: want [authzid] NUL username NUL password")
	}
	authz, authc, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if authc == "" || pass == "" {
		return "", "", errors.New("malformed PLAIN message: empty username or password")
	}
	if authz != "" && authz != authc {
		return "", "", errors.New("PLAIN authorization id must be empty or equal the username")
	}
	return authc, pass, nil
}

func (s *plainSession) Step(in []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, errors.New("PLAIN exchange already complete")
	}
	user, pass, err := ParsePlain(in)
	if err != nil {
		return nil, false, err
	}
	if !s.users.VerifyPassword(user, pass) {
		return nil, false, ErrAuthFailed
	}
	s.user, s.done = user, true
	return nil, true, nil
}

func (s *plainSession) Principal() Principal { return User(s.user) }
func (s *plainSession) Mechanism() string    { return "PLAIN" }

type scramSession struct {
	mech string
	conv *scram.ServerConversation
	user string
}

func newScramSession(u *Users, mech string) (*scramSession, error) {
	s := &scramSession{mech: mech}
	gen := scram.SHA256
	if mech == ScramSHA512 {
		gen = scram.SHA512
	}
	srv, err := gen.NewServer(func(user string) (scram.StoredCredentials, error) {
		c, ok := u.Lookup(user, mech)
		if !ok {
			return scram.StoredCredentials{}, ErrAuthFailed
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
			StoredKey:  c.StoredKey,
			ServerKey:  c.ServerKey,
		}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: %s server: %w", mech, err)
	}
	s.conv = srv.NewConversation()
	return s, nil
}

func (s *scramSession) Step(in []byte) ([]byte, bool, error) {
	if len(in) > maxSASLMessage {
		return nil, false, errors.New("SCRAM message too long")
	}
	if s.conv.Done() {
		return nil, false, errors.New("SCRAM exchange already complete")
	}
	out, err := s.conv.Step(string(in))
	if err != nil {
		// Unknown user, bad proof and malformed messages all look alike
		// to the client.
		return nil, false, fmt.Errorf("%w (%s)", ErrAuthFailed, s.mech)
	}
	if s.conv.Done() {
		if !s.conv.Valid() {
			return nil, false, ErrAuthFailed
		}
		s.user = s.conv.Username()
		return []byte(out), true, nil
	}
	return []byte(out), false, nil
}

func (s *scramSession) Principal() Principal { return User(s.user) }
func (s *scramSession) Mechanism() string    { return s.mech }
