package core

import (
	"os/exec"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// lookup reads the helper's item for key with secret-tool, a client independent of
// the helper; "" when there is none.
func lookup(t *testing.T, ss *harness.SecretService, key string) string {
	t.Helper()
	out, err := ss.Lookup(key)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && out == "" {
			return ""
		}
		t.Fatalf("secret-tool lookup %s: %v", key, err)
	}
	return out
}
