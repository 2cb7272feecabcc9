package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// exchange runs a client mechanism (franz-go's own SCRAM and PLAIN, an
// implementation independent of the server's) against a server session.
func exchange(t *testing.T, u *Users, mech sasl.Mechanism) (Principal, error) {
	t.Helper()
	srv, err := u.NewSession(mech.Name())
	if err != nil {
		return "", err
	}
	cs, msg, err := mech.Authenticate(context.Background(), "127.0.0.1:9092")
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		out, done, err := srv.Step(msg)
		if err != nil {
			return "", err
		}
		cdone, next, err := cs.Challenge(out)
		if err != nil {
			return "", err
		}
		if done {
			if !cdone {
				t.Fatalf("%s: server done, client not", mech.Name())
			}
			return srv.Principal(), nil
		}
		msg = next
	}
	t.Fatalf("%s: exchange did not finish", mech.Name())
	return "", nil
}

func TestSASL(t *testing.T) {
	u := NewUsers()
	if err := u.SetPassword("alice", ScramSHA256, "s3cret-ä", 0); err != nil {
		t.Fatal(err)
	}
	if err := u.SetPassword("alice", ScramSHA512, "s3cret-ä", 8192); err != nil {
		t.Fatal(err)
	}
	if err := u.SetPassword("bob", ScramSHA512, "bobpw", 0); err != nil {
		t.Fatal(err)
	}
	good := []sasl.Mechanism{
		scram.Auth{User: "alice", Pass: "s3cret-ä"}.AsSha256Mechanism(),
		scram.Auth{User: "alice", Pass: "s3cret-ä"}.AsSha512Mechanism(),
		scram.Auth{User: "bob", Pass: "bobpw"}.AsSha512Mechanism(),
		plain.Auth{User: "alice", Pass: "s3cret-ä"}.AsMechanism(),
		plain.Auth{User: "bob", Pass: "bobpw"}.AsMechanism(),
	}
	for _, m := range good {
		p, err := exchange(t, u, m)
		if err != nil || (p != User("alice") && p != User("bob")) {
			t.Errorf("%s: principal %q, err %v", m.Name(), p, err)
		}
	}
	bad := []sasl.Mechanism{
		scram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism(),
		scram.Auth{User: "nobody", Pass: "x"}.AsSha512Mechanism(),
		scram.Auth{User: "bob", Pass: "bobpw"}.AsSha256Mechanism(), // bob has no SHA-256 credential
		plain.Auth{User: "alice", Pass: "wrong"}.AsMechanism(),
		plain.Auth{User: "nobody", Pass: "x"}.AsMechanism(),
	}
	for _, m := range bad {
		if p, err := exchange(t, u, m); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: principal %q, err %v, want ErrAuthFailed", m.Name(), p, err)
		}
	}
	if _, err := u.NewSession("GSSAPI"); err == nil {
		t.Error("an unsupported mechanism started")
	}

	// A set restored from its JSON form authenticates the same.
	raw, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("s3cret")) || bytes.Contains(raw, []byte("bobpw")) {
		t.Fatal("the stored form contains the password")
	}
	u2 := NewUsers()
	if err := json.Unmarshal(raw, u2); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(t, u2, scram.Auth{User: "alice", Pass: "s3cret-ä"}.AsSha512Mechanism()); err != nil {
		t.Fatalf("after a JSON round trip: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"users":{"x":[{"mechanism":"SCRAM-SHA-256","iterations":4096,"salt":"c2FsdA==","stored_key":"AA==","server_key":"AA=="}]}}`), NewUsers()); err == nil {
		t.Fatal("a damaged credential was accepted")
	}
}

// TestSaltedUpsert: a credential set from a salted password (what
// AlterUserScramCredentials carries, KIP-554) authenticates the password.
func TestSaltedUpsert(t *testing.T) {
	u := NewUsers()
	salt := []byte("0123456789abcdef")
	salted, err := SaltedPassword(ScramSHA512, "pw", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.SetSalted("carol", ScramSHA512, 4096, salt, salted); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(t, u, scram.Auth{User: "carol", Pass: "pw"}.AsSha512Mechanism()); err != nil {
		t.Fatal(err)
	}
	if err := u.SetSalted("carol", ScramSHA256, 4096, salt, salted); err == nil {
		t.Error("a SHA-512 salted password was accepted for SHA-256")
	}
	if err := u.SetSalted("carol", ScramSHA512, 1000, salt, salted); err == nil {
		t.Error("1000 iterations accepted (Kafka's minimum is 4096)")
	}
	if l := u.List(); len(l) != 1 || l[0].Mechanisms[ScramSHA512] != 4096 {
		t.Errorf("List = %+v", l)
	}
	if err := u.Delete("carol", ScramSHA256); !errors.Is(err, ErrNoCredential) {
		t.Errorf("deleting a missing mechanism: %v", err)
	}
	if err := u.Delete("carol", ScramSHA512); err != nil || len(u.List()) != 0 {
		t.Errorf("Delete: %v, left %v", err, u.List())
	}
}

func TestParsePlain(t *testing.T) {
	for _, c := range []struct {
		in   string
		user string
		ok   bool
	}{
		{"\x00alice\x00pw", "alice", true},
		{"alice\x00alice\x00pw", "alice", true},
		{"mallory\x00alice\x00pw", "", false},
		{"alice\x00pw", "", false},
		{"\x00\x00pw", "", false},
		{"\x00alice\x00", "", false},
		{"\x00a\x00b\x00c", "", false},
	} {
		user, _, err := ParsePlain([]byte(c.in))
		if (err == nil) != c.ok || user != c.user {
			t.Errorf("ParsePlain(%q) = %q, %v", c.in, user, err)
		}
	}
}

// FuzzSASL: arbitrary client messages, in any order, never panic a server
// session and never authenticate without the password.
func FuzzSASL(f *testing.F) {
	f.Add("PLAIN", []byte("\x00alice\x00pw"), []byte{})
	f.Add(ScramSHA256, []byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add(ScramSHA512, []byte("n,a=x,n=alice,r=1"), []byte("garbage"))
	u := NewUsers()
	if err := u.SetPassword("alice", ScramSHA256, "correct horse", 0); err != nil {
		f.Fatal(err)
	}
	if err := u.SetPassword("alice", ScramSHA512, "correct horse", 0); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mech string, m1, m2 []byte) {
		s, err := u.NewSession(mech)
		if err != nil {
			return
		}
		for _, m := range [][]byte{m1, m2, m2} {
			_, done, err := s.Step(m)
			if err != nil {
				return
			}
			if done && mech == "PLAIN" && !bytes.Contains(m1, []byte("correct horse")) {
				t.Fatalf("PLAIN authenticated without the password: %q", m1)
			}
			if done && mech != "PLAIN" {
				t.Fatalf("%s authenticated from fuzzed messages %q %q", mech, m1, m2)
			}
		}
	})
}
