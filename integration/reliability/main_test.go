// Package reliability proves, with the real binary against the Entra ID simulator,
// that pctoken-helper keeps answering under parallel callers, SIGKILLs, identity
// provider faults and hostile input, never loses or leaks a refresh token, and never
// corrupts its files (GitHub issue 6; docs/security.md tells how each point is tested).
package reliability

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"testing"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// markerVar tags the environment of every process this package starts (helpers,
// browsers, daemons), with a value unique to this run of the test binary, so that
// processes left behind can be told from those of tests running in parallel.
const markerVar = "PCTOKEN_RELIABILITY_RUN"

var runMarker = func() string {
	if v := os.Getenv(markerVar); v != "" {
		return v // a child of this run (the test binary as browser) keeps it
	}
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

func TestMain(m *testing.M) {
	harness.RunBrowserIfAsked()
	code := m.Run()
	harness.Cleanup()
	if left := waitNoLeftovers(runMarker, 5*time.Second); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: processes started by these tests are still running:\n  %s\n", strings.Join(left, "\n  "))
		code = 1
	}
	os.Exit(code)
}

// leftovers lists the running processes whose marker starts with marker: a helper, a
// browser, or a dbus-daemon or gnome-keyring-daemon started by a test or autolaunched
// by the helper. Zombies have no environment and are not listed.
func leftovers(marker string) []string {
	self := os.Getpid()
	want := []byte(markerVar + "=" + marker)
	des, _ := os.ReadDir("/proc")
	var out []string
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", de.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.HasPrefix(kv, want) {
				cmd, _ := os.ReadFile(filepath.Join("/proc", de.Name(), "cmdline"))
				out = append(out, fmt.Sprintf("pid %d: %s", pid, bytes.ReplaceAll(bytes.TrimRight(cmd, "\x00"), []byte{0}, []byte{' '})))
				break
			}
		}
	}
	return out
}

// waitNoLeftovers waits up to limit for marked processes to end (a killed process
// may take a moment to go), and returns those still running.
func waitNoLeftovers(marker string, limit time.Duration) []string {
	deadline := time.Now().Add(limit)
	for {
		left := leftovers(marker)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}
