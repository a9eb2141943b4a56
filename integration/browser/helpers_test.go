package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/securestore"
)

// Loopback ports: each test takes a block in 10000-16399, below the kernel's
// ephemeral range (32768 and up), offset by the process id so that test processes
// side by side rarely share one; the default 8400-8999, entra's 18400-18499 and
// consentflow's and consent's blocks (20000 and up) are left to others.
const (
	portBase   = 10000
	blockSize  = 8
	blockCount = 800
)

var nextBlock atomic.Int64

func portRange(t *testing.T) (string, int) {
	t.Helper()
	start := int64(os.Getpid()) % blockCount
	for range 50 {
		first := portBase + int((start+nextBlock.Add(1))%blockCount)*blockSize
		if portFree(first) {
			return fmt.Sprintf("%d-%d", first, first+blockSize-1), first
		}
	}
	t.Fatal("no free block of loopback ports")
	return "", 0
}

func portFree(p int) bool {
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// helper is a pctoken-helper run in the background.
type helper struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
	took           time.Duration
}

func startHelper(t *testing.T, e *harness.Env, stdin string, args ...string) *helper {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	h := &helper{cmd: e.Command(ctx, args...), done: make(chan struct{})}
	h.cmd.Dir = e.Dir // never the source tree
	h.cmd.Stdin = strings.NewReader(stdin)
	h.cmd.Stdout, h.cmd.Stderr = &h.stdout, &h.stderr
	start := time.Now()
	if err := h.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		h.err = h.cmd.Wait()
		h.took = time.Since(start)
		close(h.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

// wait returns the run's result once the helper has exited.
func (h *helper) wait(t *testing.T) harness.Result {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("pctoken-helper still running after 90s; stderr:\n%s", h.stderr.String())
	}
	res := harness.Result{Stdout: h.stdout.String(), Stderr: h.stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(h.err, &ee):
		res.Code = ee.ExitCode()
	case h.err != nil && !errors.Is(h.err, exec.ErrWaitDelay):
		t.Fatalf("pctoken-helper: %v", h.err)
	}
	return res
}

func wantExit(t *testing.T, res harness.Result, code int) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.Code, code, res.Stdout, res.Stderr)
	}
	if res.Stdout != "" {
		t.Fatalf("consent wrote to stdout: %q", res.Stdout)
	}
}

// storedRefreshToken is the profile's refresh token in the file store, "" if none.
func storedRefreshToken(t *testing.T, e *harness.Env, profile string) string {
	t.Helper()
	st, _, err := securestore.Open(securestore.Config{Backend: "file", FileDir: e.Vars["PCTOKEN_STORE_DIR"], Passphrase: harness.Passphrase})
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Get("refresh-token:" + profile)
	if err != nil {
		return ""
	}
	return v
}

// screenshotDir is where the pages' screenshots go: BROWSER_TEST_SCREENSHOTS when set
// (to refresh docs/img, see docs/consent.md), else the test's temporary folder.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("BROWSER_TEST_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// profileSaved reports whether consent saved the profile.
func profileSaved(e *harness.Env, name string) bool {
	_, err := os.Stat(filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper", "profiles", name+".json"))
	return err == nil
}

// containsAny reports which of secrets (non-empty) s contains.
func containsAny(s string, secrets map[string]string) []string {
	var found []string
	for name, v := range secrets {
		if v != "" && strings.Contains(s, v) {
			found = append(found, name)
		}
	}
	return found
}

func itoa(n int) string { return strconv.Itoa(n) }

// contrast is the WCAG 2 contrast ratio of two CSS "rgb(r, g, b)" colours.
func contrast(fg, bg string) (float64, error) {
	l1, err := luminance(fg)
	if err != nil {
		return 0, err
	}
	l2, err := luminance(bg)
	if err != nil {
		return 0, err
	}
	if l1 < l2 {
		l1, l2 = l2, l1
	}
	return (l1 + 0.05) / (l2 + 0.05), nil
}

func luminance(css string) (float64, error) {
	var r, g, b float64
	if _, err := fmt.Sscanf(css, "rgb(%g, %g, %g)", &r, &g, &b); err != nil {
		return 0, fmt.Errorf("colour %q: %w", css, err)
	}
	lin := func(c float64) float64 {
		c /= 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b), nil
}
