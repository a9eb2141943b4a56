// Package consentflow tests the interactive step end to end: the real binary, the
// simulator as Entra ID, and the test binary itself as the user's browser.
package consentflow

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
