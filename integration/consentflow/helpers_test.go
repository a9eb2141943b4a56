package consentflow

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// Port blocks for the loopback listener. Each test takes its own block below the
// kernel's ephemeral range (32768 and up), so the simulators' and other tests'
// ephemeral ports cannot land in it, and the block base depends on the process id,
// so test processes running side by side rarely share blocks; the default 8400-8999
// is left to other packages.
const (
	portBase   = 20000
	blockSize  = 8
	blockCount = 1000
)

var nextBlock atomic.Int64

// portBlock returns the first port of a block of blockSize ports whose first ports
// are free right now.
func portBlock(t *testing.T) int {
	t.Helper()
	start := int64(os.Getpid()) % blockCount
	for range 50 {
		n := (start + nextBlock.Add(1)) % blockCount
		first := portBase + int(n)*blockSize
		if portsFree(first, 3) {
			return first
		}
	}
	t.Fatal("no free block of loopback ports")
	return 0
}

func portsFree(first, n int) bool {
	for p := first; p < first+n; p++ {
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// takePort holds 127.0.0.1:port for the rest of the test, as another program would.
func takePort(t *testing.T, port int) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("take port %d: %v", port, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func portRange(first, last int) string { return fmt.Sprintf("%d-%d", first, last) }

// newEnv is a harness environment whose browser is the test binary, logging what
// it does to a file the test can read.
func newEnv(t *testing.T) (*harness.Env, string) {
	t.Helper()
	e := harness.New(t)
	e.UseTestBinaryAsBrowser()
	log := filepath.Join(e.Dir, "browser.log")
	e.Vars[harness.BrowserLogVar] = log
	return e, log
}

func wantExit(t *testing.T, res harness.Result, code int, what string) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, res.Code, code, res.Stdout, res.Stderr)
	}
}

// consentOK checks what every successful consent shares: nothing on stdout, the
// summary on stderr.
func consentOK(t *testing.T, res harness.Result, profileName string) {
	t.Helper()
	wantExit(t, res, 0, "consent")
	if res.Stdout != "" {
		t.Fatalf("consent wrote to stdout: %q", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "Consent saved for profile "+profileName) {
		t.Fatalf("no consent summary on stderr:\n%s", res.Stderr)
	}
}

type token struct {
	AccessToken string `json:"access_token"`
	TenantID    string `json:"tenant_id"`
	Profile     string `json:"profile"`
	Cached      bool   `json:"cached"`
}

// getToken runs get with args and checks it redeemed the stored refresh token.
func getToken(t *testing.T, e *harness.Env, args ...string) token {
	t.Helper()
	res := e.MustRun(append([]string{"get", "--force-refresh"}, args...)...)
	var tok token
	if err := json.Unmarshal([]byte(res.Stdout), &tok); err != nil {
		t.Fatalf("get output: %v\n%s", err, res.Stdout)
	}
	if tok.Cached || tok.AccessToken == "" {
		t.Fatalf("get: %+v", tok)
	}
	if _, err := e.Sim.ValidateAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("the simulator rejects the token: %v", err)
	}
	return tok
}

// readProfile is the saved profile file, raw and decoded.
func readProfile(t *testing.T, e *harness.Env, name string) (string, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper", "profiles", name+".json"))
	if err != nil {
		t.Fatalf("read profile %s: %v", name, err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("profile %s: %v", name, err)
	}
	return string(b), p
}

// running is a helper process started in the background, whose stderr is read as it
// comes.
type running struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr strings.Builder
	lines  chan string
	done   chan struct{}
}

// start runs the helper with args in the background; the test ends it at cleanup
// at the latest.
func start(t *testing.T, e *harness.Env, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	r := &running{cmd: e.Command(ctx, args...), cancel: cancel, lines: make(chan string, 64), done: make(chan struct{})}
	r.cmd.Stdout = &r.stdout
	pipe, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			r.mu.Lock()
			r.stderr.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		r.cmd.Wait()
	})
	return r
}

// waitLine returns the first stderr line for which match is true.
func (r *running) waitLine(t *testing.T, within time.Duration, match func(string) bool) string {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case line := <-r.lines:
			if match(line) {
				return line
			}
		case <-r.done:
			t.Fatalf("the helper ended before printing the line; stderr:\n%s", r.stderrText())
		case <-timer.C:
			t.Fatalf("no such line within %s; stderr:\n%s", within, r.stderrText())
		}
	}
}

func (r *running) stderrText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// wait waits for the process and returns its result.
func (r *running) wait(t *testing.T) harness.Result {
	t.Helper()
	err := r.cmd.Wait()
	<-r.done
	res := harness.Result{Stdout: r.stdout.String(), Stderr: r.stderrText()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("helper: %v", err)
	}
	return res
}
