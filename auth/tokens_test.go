package auth

import (
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	tk, err := ParseTokens(strings.NewReader("# gateway tokens\n\n0123456789abcdef-alice User:alice\nfedcba9876543210-svc billing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := tk.Principal("0123456789abcdef-alice"); !ok || p != User("alice") {
		t.Errorf("alice's token: %q %v", p, ok)
	}
	if p, ok := tk.Principal("fedcba9876543210-svc"); !ok || p != User("billing") {
		t.Errorf("a bare name: %q %v", p, ok)
	}
	if _, ok := tk.Principal("0123456789abcdef-alicE"); ok {
		t.Error("a wrong token was accepted")
	}
	for _, bad := range []string{"short User:x\n", "onlyonefield0123456\n", "a b c\n"} {
		if _, err := ParseTokens(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseTokens(%q) accepted", bad)
		}
	}
	var none *Tokens
	if _, ok := none.Principal("x"); ok || none.Len() != 0 {
		t.Error("nil Tokens accepted a token")
	}
}
