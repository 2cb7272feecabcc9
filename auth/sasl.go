package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
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

// FailedError is a failed authentication: its message (what the client is
// told) is ErrAuthFailed's, whatever the cause; Cause is for logs.
type FailedError struct {
	Mechanism string
	Cause     error
}

func (e *FailedError) Error() string { return fmt.Sprintf("%v (%s)", ErrAuthFailed, e.Mechanism) }

// Unwrap makes errors.Is(err, ErrAuthFailed) hold.
func (e *FailedError) Unwrap() error { return ErrAuthFailed }

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

// scramSession is the server side of SCRAM (RFC 5802), written here rather
// than taken from xdg-go/scram because Kafka's server accepts a
// client-final nonce that merely ends with the server's nonce (librdkafka
// up to 2.x sends the client nonce twice), and a server that does not
// cannot authenticate librdkafka, kcat or confluent-kafka-python. Channel
// binding is not offered (a "p=" GS2 header is refused).
type scramSession struct {
	mech  string
	users *Users
	hash  func() hash.Hash

	step        int // 0: expecting client-first, 1: client-final, 2: done
	user        string
	cred        Credential
	gs2         string // the GS2 header, echoed base64-encoded in c=
	clientBare  string
	serverFirst string
	nonce       string // client nonce + server nonce
}

func newScramSession(u *Users, mech string) (*scramSession, error) {
	h, err := mechHash(mech)
	if err != nil {
		return nil, err
	}
	return &scramSession{mech: mech, users: u, hash: h}, nil
}

func (s *scramSession) fail(cause string) ([]byte, bool, error) {
	s.step = 2
	return nil, false, &FailedError{Mechanism: s.mech, Cause: errors.New(cause)}
}

func (s *scramSession) Step(in []byte) ([]byte, bool, error) {
	if len(in) > maxSASLMessage {
		return s.fail("message too long")
	}
	switch s.step {
	case 0:
		return s.clientFirst(string(in))
	case 1:
		return s.clientFinal(string(in))
	}
	return nil, false, errors.New("SCRAM exchange already complete")
}

// clientFirst: gs2-header client-first-message-bare, where the header is
// "n," or "y," then an optional "a=authzid", then ",", and the bare
// message "n=user,r=nonce[,extensions]".
func (s *scramSession) clientFirst(msg string) ([]byte, bool, error) {
	if !strings.HasPrefix(msg, "n,") && !strings.HasPrefix(msg, "y,") {
		return s.fail("client-first: channel binding is not supported, or a malformed GS2 header")
	}
	rest := msg[2:]
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return s.fail("client-first: malformed GS2 header")
	}
	authz := rest[:comma]
	s.gs2 = msg[:2+comma+1]
	s.clientBare = rest[comma+1:]
	attrs := strings.Split(s.clientBare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) < 3 {
		return s.fail("client-first: want n=user,r=nonce")
	}
	user, ok := saslName(attrs[0][2:])
	if !ok || user == "" {
		return s.fail("client-first: malformed user name")
	}
	if authz != "" && (!strings.HasPrefix(authz, "a=") || authz[2:] != attrs[0][2:]) {
		return s.fail("client-first: the authorization id must equal the user")
	}
	cnonce := attrs[1][2:]
	if strings.ContainsAny(cnonce, ",") {
		return s.fail("client-first: malformed nonce")
	}
	cred, found := s.users.Lookup(user, s.mech)
	if !found {
		return s.fail("unknown user or no " + s.mech + " credential for " + user)
	}
	sn := make([]byte, 18)
	rand.Read(sn)
	s.user, s.cred = user, cred
	s.nonce = cnonce + base64.RawStdEncoding.EncodeToString(sn)
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(cred.Iterations)
	s.step = 1
	return []byte(s.serverFirst), false, nil
}

// clientFinal: "c=" base64(gs2-header) ",r=" nonce [",ext"] ",p=" proof.
func (s *scramSession) clientFinal(msg string) ([]byte, bool, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return s.fail("client-final: no proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return s.fail("client-final: want c=...,r=...,p=...")
	}
	if cb, err := base64.StdEncoding.DecodeString(attrs[0][2:]); err != nil || string(cb) != s.gs2 {
		return s.fail("client-final: channel binding does not match the GS2 header")
	}
	// Kafka's ScramSaslServer checks endsWith, not equality (see the type).
	if !strings.HasSuffix(attrs[1][2:], s.nonce) {
		return s.fail("client-final: nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != s.hash().Size() {
		return s.fail("client-final: malformed proof")
	}
	authMsg := s.clientBare + "," + s.serverFirst + "," + withoutProof
	sig := hmacSum(s.hash, s.cred.StoredKey, authMsg)
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ sig[j]
	}
	h := s.hash()
	h.Write(clientKey)
	if !hmac.Equal(h.Sum(nil), s.cred.StoredKey) {
		return s.fail("client-final: wrong password")
	}
	s.step = 2
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(s.hash, s.cred.ServerKey, authMsg))), true, nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// saslName decodes a SCRAM user name: "=2C" is ",", "=3D" is "=", any
// other "=" is malformed.
func saslName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

func (s *scramSession) Principal() Principal { return User(s.user) }
func (s *scramSession) Mechanism() string    { return s.mech }
