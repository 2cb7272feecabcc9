package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// TestMissingFailsWhenRequired runs TestHelperMissing in a child process
// with and without SPOOL_REQUIRE_CLIENTS=1: it must skip (exit 0) without
// it and fail (exit non-zero) with it.
func TestMissingFailsWhenRequired(t *testing.T) {
	for _, tc := range []struct {
		env     string
		wantErr bool
	}{{"", false}, {"1", true}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_HELPER=1", RequireVar+"="+tc.env)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.wantErr {
			t.Errorf("%s=%q: err = %v, want error %v\n%s", RequireVar, tc.env, err, tc.wantErr, out)
		}
	}
}

func TestHelperMissing(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") != "1" {
		t.Skip("helper process for TestMissingFailsWhenRequired")
	}
	LookPath(t, "spool-no-such-program-xyz", "it does not exist")
	t.Fatal("LookPath returned for a missing program")
}
