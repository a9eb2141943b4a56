// Package harness runs the real pctoken-helper binary, as users run it, against the
// Entra ID simulator: each test gets its own simulator, folders and environment, so
// tests in different packages and processes never share state.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// Passphrase is the file store passphrase of every test environment.
const Passphrase = "harness-file-store-passphrase"

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Binary builds the helper once per test process (CGO_ENABLED=0, as released) and
// returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pctoken-helper-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "pctoken-helper")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/pctoken/pctoken-helper/cmd/pctoken-helper")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = &buildError{err, out.String()}
		}
	})
	if buildErr != nil {
		t.Fatalf("build pctoken-helper: %v", buildErr)
	}
	return buildPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Env is one isolated user of the helper: a simulator, a home, folders and variables.
type Env struct {
	T   testing.TB
	Sim *entrasim.Sim
	Bin string
	Dir string
	// Vars are the variables every run gets (on top of PATH); tests may change them.
	Vars map[string]string
}

// New starts a simulator and prepares an environment using the encrypted file store
// and the simulator's public client.
func New(t testing.TB) *Env {
	t.Helper()
	dir := t.TempDir()
	sim, err := entrasim.Start(entrasim.Options{Dir: filepath.Join(dir, "sim")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Sim: sim, Bin: Binary(t), Dir: dir, Vars: map[string]string{
		"HOME":                    home,
		"XDG_CONFIG_HOME":         filepath.Join(home, ".config"),
		"XDG_CACHE_HOME":          filepath.Join(home, ".cache"),
		"SSL_CERT_FILE":           sim.CAFile(),
		"PCTOKEN_AUTHORITY_HOST":  sim.URL(),
		"PCTOKEN_CLIENT_ID":       entrasim.PublicClientID,
		"PCTOKEN_STORE":           "file",
		"PCTOKEN_STORE_DIR":       filepath.Join(dir, "store"),
		"PCTOKEN_FILE_PASSPHRASE": Passphrase,
		// No session bus: the file store must not depend on one.
		"DBUS_SESSION_BUS_ADDRESS": "",
	}}
	return e
}

// Environ is the process environment of a run.
func (e *Env) Environ() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range e.Vars {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Command is the helper with args, in e's environment.
func (e *Env) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.Bin, args...)
	cmd.Env = e.Environ()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Result is what a run printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs the helper with empty stdin and returns its result; it fails the test if
// the run takes longer than a minute (the helper must never hang).
func (e *Env) Run(args ...string) Result {
	e.T.Helper()
	return e.RunStdin("", args...)
}

// RunStdin runs the helper with stdin.
func (e *Env) RunStdin(stdin string, args ...string) Result {
	e.T.Helper()
	return e.RunReader(strings.NewReader(stdin), args...)
}

// RunReader runs the helper with stdin read from r.
func (e *Env) RunReader(r io.Reader, args ...string) Result {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.Command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, &out, &errb
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The helper exited 0, but a process it started (the browser, which inherits
		// its stderr, as a real one would) still held the output pipes WaitDelay
		// after; everything the helper wrote has been read.
		err = nil
	}
	if ctx.Err() != nil {
		e.T.Fatalf("pctoken-helper %s: still running after a minute\nstderr: %s", strings.Join(args, " "), errb.String())
	}
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.T.Fatalf("run pctoken-helper: %v", err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

// MustRun runs the helper and fails the test unless it exits 0.
func (e *Env) MustRun(args ...string) Result {
	e.T.Helper()
	res := e.Run(args...)
	if res.Code != 0 {
		e.T.Fatalf("pctoken-helper %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// Consent runs the device-code consent for the environment's client (the simulator
// approves it as its user) and fails the test if it does not succeed.
func (e *Env) Consent(args ...string) Result {
	e.T.Helper()
	e.Sim.ApproveDeviceCodes(true)
	return e.MustRun(append([]string{"consent", "--flow", "device-code"}, args...)...)
}

// BrowserEnv makes the test binary itself the user's browser: call RunBrowserIfAsked
// first thing in TestMain, then set these variables on the Env so that consent's
// browser "signs in" by following the authorize URL to the loopback redirect.
func (e *Env) UseTestBinaryAsBrowser() {
	e.Vars["BROWSER"] = os.Args[0]
	e.Vars["HARNESS_BROWSER"] = "1"
}

// Variables that steer the test binary when it plays the browser (set them in Vars
// after UseTestBinaryAsBrowser):
//
//   - HARNESS_BROWSER_FIRST: a URL fetched before anything else, as a stray request
//     to the loopback listener (a favicon, a port scanner) would be.
//   - HARNESS_BROWSER_WRONG_STATE: "first" delivers the authorization response with
//     a tampered state before the real one; "only" delivers just the tampered one.
//   - HARNESS_BROWSER_LOG: a file the browser appends one line to per request it
//     makes to the redirect URI: "<kind>=<status>", kind being first, wrong-state
//     or redirect, status 0 when the request failed. Tests read it with BrowserLog.
const (
	BrowserFirstVar      = "HARNESS_BROWSER_FIRST"
	BrowserWrongStateVar = "HARNESS_BROWSER_WRONG_STATE"
	BrowserLogVar        = "HARNESS_BROWSER_LOG"
)

// BrowserLog returns the lines the browser wrote to the file named by
// HARNESS_BROWSER_LOG, none if it never ran.
func BrowserLog(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// RunBrowserIfAsked acts as the browser when the test binary was started as one: it
// fetches the URL in os.Args[1], follows the redirect to the loopback listener, and
// exits. It returns when the process is a normal test run.
func RunBrowserIfAsked() {
	if os.Getenv("HARNESS_BROWSER") != "1" || len(os.Args) < 2 {
		return
	}
	fail := func(err error) {
		os.Stderr.WriteString("harness browser: " + err.Error() + "\n")
		os.Exit(1)
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		// Redirects are followed by hand, so the response can be tampered with.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	fetch := func(kind, target string) (*http.Response, error) {
		resp, err := client.Get(target)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusSeeOther && kind != "" {
			// The listener sends the browser on to its result page, as a browser follows.
			loc, err := resp.Location()
			if err != nil {
				return nil, err
			}
			if resp, err = client.Get(loc.String()); err != nil {
				return nil, err
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		if kind != "" {
			browserLog(kind, resp.StatusCode)
		}
		return resp, nil
	}
	authorize := os.Args[len(os.Args)-1]
	if extra := os.Getenv(BrowserFirstVar); extra != "" {
		if _, err := fetch("first", extra); err != nil {
			browserLog("first", 0)
		}
	}
	resp, err := fetch("", authorize)
	if err != nil {
		fail(err)
	}
	if resp.StatusCode != http.StatusFound {
		fail(errors.New("authorize answered " + resp.Status + ", not a redirect"))
	}
	redirect, err := resp.Location()
	if err != nil {
		fail(err)
	}
	if mode := os.Getenv(BrowserWrongStateVar); mode != "" {
		wrong := *redirect
		q := wrong.Query()
		q.Set("state", q.Get("state")+"-tampered")
		wrong.RawQuery = q.Encode()
		if _, err := fetch("wrong-state", wrong.String()); err != nil {
			fail(err)
		}
		if mode == "only" {
			os.Exit(0)
		}
	}
	if _, err := fetch("redirect", redirect.String()); err != nil {
		fail(err)
	}
	os.Exit(0)
}

func browserLog(kind string, status int) {
	path := os.Getenv(BrowserLogVar)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(kind + "=" + strconv.Itoa(status) + "\n")
}

// Token is get's json output.
type Token struct {
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type"`
	ExpiresOn   int64    `json:"expires_on"`
	ExpiresAt   string   `json:"expires_at"`
	TenantID    string   `json:"tenant_id"`
	Scopes      []string `json:"scopes"`
	Profile     string   `json:"profile"`
	Cached      bool     `json:"cached"`
}

// DecodeToken parses get's json output and fails the test if it is anything else.
func DecodeToken(t testing.TB, out string) Token {
	t.Helper()
	var tok Token
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		t.Fatalf("get output is not JSON: %v\n%s", err, out)
	}
	return tok
}
