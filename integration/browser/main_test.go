// Package browser tests the consent step in a real browser: headless Chromium, started
// by pctoken-helper as $BROWSER, signs in at the Entra ID simulator and is driven and
// watched through its DevTools protocol (chromedp), so what a person sees is what is
// checked: the result pages, the address bar, the history.
package browser

import (
	"os"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}
