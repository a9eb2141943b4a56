// Package hostile runs the real binary against a hostile identity provider: a TLS
// proxy in front of the Entra ID simulator that redirects, names endpoints on other
// hosts, sends absurd lifetimes, tokens for the wrong tenant or resource, huge and
// dribbled bodies, and a cache folder with files planted in it. Every test checks
// the exit code, the message, that the refresh token (and the client secret) never
// reached another host, that nothing was cached, and that no secret was printed.
package hostile

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
