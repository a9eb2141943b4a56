// Package mi tests the managed-identity endpoint (mi exec, mi serve) with the real
// clients that use it: azidentity's ManagedIdentityCredential and
// DefaultAzureCredential (this test binary, re-run as the child of mi exec),
// @azure/identity under Node, and raw HTTP requests for every refusal. The token chain
// behind the endpoint is the real one, against the Entra ID simulator.
package mi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/integration/testca"
)

// childVar makes the test binary a child program of mi exec (see child_test.go).
const childVar = "MI_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childVar); mode != "" {
		os.Exit(runChild(mode))
	}
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// env is a harness environment with a consented profile "contoso".
type env struct {
	*harness.Env
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{harness.New(t)}
	e.Consent("--profile", "contoso")
	e.Vars["PCTOKEN_PROFILE"] = "contoso"
	return e
}

// run runs the helper with args and extra variables, in a temporary folder, and waits
// at most two minutes.
func (e *env) run(t *testing.T, extra map[string]string, args ...string) harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, extra, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pctoken-helper %s: still running after two minutes\nstderr: %s", strings.Join(args, " "), errb.String())
	}
	res := harness.Result{Stdout: out.String(), Stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run pctoken-helper: %v", err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

func (e *env) command(ctx context.Context, extra map[string]string, args ...string) *exec.Cmd {
	cmd := e.Command(ctx, args...)
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = e.T.TempDir()
	return cmd
}

// self is this test binary, run as the child program.
func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// grants counts refresh-token redemptions at the simulator.
func grants(sim *entrasim.Sim) int { return sim.Stats().Grants["refresh_token"] }

// childLine is what a child client prints per scope.
type childLine struct {
	Cred      string `json:"cred"`
	Scope     string `json:"scope"`
	Token     string `json:"token"`
	ExpiresOn int64  `json:"expires_on"`
	Same      bool   `json:"same"`
	APIStatus int    `json:"api_status"`
	Error     string `json:"error"`
}

func childLines(t *testing.T, out string) []childLine {
	t.Helper()
	var lines []childLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l childLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("child printed a line that is not JSON: %q", sc.Text())
		}
		lines = append(lines, l)
	}
	return lines
}

// api is a resource server of one tenant that accepts only the simulator's tokens for
// the audience its path names (/arm, /graph), as ARM and Graph do.
type api struct {
	base   string
	caFile string
	mu     sync.Mutex
	seen   []string // "ok" or why a token was refused
}

var audiences = map[string]string{
	"/arm":   "https://management.azure.com",
	"/graph": "https://graph.microsoft.com",
}

func newAPI(t *testing.T, sim *entrasim.Sim, tenant string) *api {
	t.Helper()
	caFile, cert := testCert(t)
	a := &api{caFile: caFile}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			verdict := "ok"
			c, err := sim.ValidateAccessToken(tok)
			switch audience, known := audiences[r.URL.Path]; {
			case !known:
				verdict = "unknown path " + r.URL.Path
			case !strings.EqualFold(scheme, "Bearer"):
				verdict = "no bearer token"
			case err != nil:
				verdict = err.Error()
			case c.Audience != audience:
				verdict = fmt.Sprintf("audience %s, want %s", c.Audience, audience)
			case c.TenantID != tenant:
				verdict = fmt.Sprintf("tenant %s, want %s", c.TenantID, tenant)
			}
			a.mu.Lock()
			a.seen = append(a.seen, verdict)
			a.mu.Unlock()
			if verdict != "ok" {
				http.Error(w, `{"error":{"code":"InvalidAuthenticationToken"}}`, http.StatusUnauthorized)
				return
			}
			io.WriteString(w, `{"value":[]}`)
		}),
	}
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	a.base = "https://" + ln.Addr().String()
	return a
}

func (a *api) verdicts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string{}, a.seen...)
}

// testCert is a CA file and a certificate for 127.0.0.1 signed by it.
func testCert(t *testing.T) (string, tls.Certificate) {
	t.Helper()
	ca := testca.New(t)
	return ca.File, ca.ServerCert(t, "127.0.0.1")
}
