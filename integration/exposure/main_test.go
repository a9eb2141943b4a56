// Package exposure proves, with the real binary, a hostile identity provider and
// planted files, that the helper's secrets never leave for the wrong place (issue 14,
// the output and local-files half): nothing an identity provider echoes is shown with
// a secret in it, nothing it sends reaches the terminal with an escape sequence,
// nothing another user could write decides where the refresh token goes, and no
// process the helper starts inherits a secret. docs/security.md names the test that
// holds each promise.
package exposure

import (
	"os"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

func TestMain(m *testing.M) {
	harness.RunBrowserIfAsked()
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}
