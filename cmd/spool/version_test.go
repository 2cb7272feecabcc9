package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatalf("spool version: %v", err)
	}
	if !strings.HasPrefix(out.String(), "spool ") {
		t.Fatalf("spool version printed %q, want a line starting with %q", out.String(), "spool ")
	}
}

func TestVersionRejectsArguments(t *testing.T) {
	root := newRootCmd()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"version", "extra"})
	if err := root.Execute(); err == nil {
		t.Fatal("spool version extra: want an error for an unexpected argument")
	}
}
