package harness

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/pctoken/pctoken-helper/internal/testkeyring"
)

// NeedBinaries skips the test when a program is missing, except in CI (CI=true),
// which installs them (.ci/run), where it fails.
func NeedBinaries(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			skipOrFail(t, (&testkeyring.MissingError{Binary: b}).Error())
		}
	}
}

func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// SecretService is a real, headless Secret Service for one test.
type SecretService = testkeyring.Daemons

// StartSecretService starts one for the test and stops it, checked gone, when the
// test ends; extraEnv is added to the daemons' environment.
func StartSecretService(t testing.TB, extraEnv ...string) *SecretService {
	t.Helper()
	d, err := testkeyring.Start(extraEnv...)
	var missing *testkeyring.MissingError
	if errors.As(err, &missing) {
		skipOrFail(t, missing.Error())
	}
	if err != nil {
		t.Fatalf("start the Secret Service: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	})
	return d
}
