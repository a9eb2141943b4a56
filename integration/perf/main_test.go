// Package perf measures pctoken-helper as kubectl and git run it: whole processes of
// the real binary, timed against a static Go hello-world in the same run, and counted
// requests at the Entra ID simulator. Each bar of issue 7 has a benchmark here, and
// the bars that do not depend on timing have a test that asserts them.
//
//	go test -run '^$' -bench . -benchtime 1x ./integration/perf/
//
// The figures and what they mean are in docs/performance.md.
package perf

import (
	"os"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

func TestMain(m *testing.M) {
	harness.RunBrowserIfAsked()
	code := m.Run()
	harness.Cleanup()
	cleanupTools()
	os.Exit(code)
}
