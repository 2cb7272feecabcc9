package auth

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
)

// Tokens maps HTTP bearer tokens to principals, so the gateway, console and
// lookback API decide with the same ACLs as the Kafka listener. Only the
// SHA-256 of each token is kept in memory.
type Tokens struct {
	byHash map[[32]byte]Principal
}

// ParseTokens reads a token file: one "TOKEN PRINCIPAL" per line (the
// principal as "User:name", or a bare name meaning User:name); blank lines
// and lines starting with # are skipped.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{byHash: map[[32]byte]Principal{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("auth: tokens line %d: want TOKEN PRINCIPAL", n)
		}
		if len(f[0]) < 16 {
			return nil, fmt.Errorf("auth: tokens line %d: a token must have at least 16 characters", n)
		}
		p := Principal(f[1])
		if !strings.Contains(f[1], ":") {
			p = User(f[1])
		}
		t.byHash[sha256.Sum256([]byte(f[0]))] = p
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: tokens: %w", err)
	}
	return t, nil
}

// Principal returns the principal of a bearer token.
func (t *Tokens) Principal(token string) (Principal, bool) {
	if t == nil {
		return "", false
	}
	p, ok := t.byHash[sha256.Sum256([]byte(token))]
	return p, ok
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.byHash)
}
