// Package core tests the exchange end to end: the real binary, the simulator, the
// encrypted file store, real files and processes.
package core

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
