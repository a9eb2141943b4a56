// Package consumers tests pctoken-helper with the programs that consume it, unchanged:
// kubectl and client-go's exec authenticator, git, azidentity's Azure CLI and Azure
// Developer CLI credentials, batch callers of get --request, and the shell steps of CI
// systems. Where docs/ holds a recipe for a consumer, the test reads the recipe out of
// the markdown and runs it, so that the docs cannot drift from the product.
package consumers

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

func TestMain(m *testing.M) {
	harness.RunBrowserIfAsked()
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// repoRoot is the module root, where docs/ lives.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// readDoc returns a page of docs/.
func readDoc(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var fenceRe = regexp.MustCompile("(?s)^\\s*```[A-Za-z0-9_-]*[^\\n]*\\n(.*?)\\n\\s*```")

// recipe returns the fenced block that follows the marker <!-- test: name --> in
// docs/page. Exactly one such marker must exist.
func recipe(t testing.TB, page, name string) string {
	t.Helper()
	doc := readDoc(t, page)
	marker := "<!-- test: " + name + " -->"
	if n := strings.Count(doc, marker); n != 1 {
		t.Fatalf("docs/%s has %d markers %q, want 1", page, n, marker)
	}
	rest := doc[strings.Index(doc, marker)+len(marker):]
	m := fenceRe.FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("docs/%s: no fenced block right after %q", page, marker)
	}
	return m[1] + "\n"
}

// substitute replaces each placeholder by its value and fails the test if a
// placeholder does not occur: a renamed placeholder must not go unnoticed.
func substitute(t testing.TB, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("recipe lacks the placeholder %q:\n%s", pairs[i], text)
		}
		text = strings.ReplaceAll(text, pairs[i], pairs[i+1])
	}
	return text
}

// env is a harness environment prepared for consumers: the helper is on PATH as
// "pctoken-helper", as the docs assume.
type env struct {
	*harness.Env
	binDir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := harness.New(t)
	return &env{Env: e, binDir: filepath.Dir(e.Bin)}
}

// path is PATH with the helper's folder (and extra folders) first.
func (e *env) path(extra ...string) string {
	return strings.Join(append(append(extra, e.binDir), os.Getenv("PATH")), string(os.PathListSeparator))
}

// environ is the environment of a consumer process: the harness's variables, the
// helper on PATH, and extra "K=V" entries (which win).
func (e *env) environ(extra ...string) []string {
	vars := map[string]string{}
	for k, v := range e.Vars {
		if v != "" {
			vars[k] = v
		}
	}
	vars["PATH"] = e.path()
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// run runs a consumer program with a bounded wait and returns stdout, stderr and
// the exit code.
func run(t testing.TB, cmd *exec.Cmd, stdin string) (string, string, int) {
	t.Helper()
	if cmd.Stdin == nil {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q: still running after 90s\nstderr: %s", cmd.Path, cmd.Args[1:], errb.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", cmd.Path, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// command is name with args in the consumer environment of e.
func (e *env) command(ctx context.Context, extraEnv []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e.environ(extraEnv...)
	cmd.Dir = e.Dir
	return cmd
}

// jsonToken is get's json output.
type jsonToken = harness.Token

func decodeToken(t testing.TB, out string) jsonToken {
	t.Helper()
	return harness.DecodeToken(t, out)
}

// serveTLS serves h over TLS on ln with cert until the test ends.
func serveTLS(t testing.TB, ln net.Listener, cert tls.Certificate, h http.Handler) {
	t.Helper()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
}

// apiServer is a resource server that accepts only valid simulator tokens for one
// audience and tenant, as AKS, Graph or Azure DevOps do.
type apiServer struct {
	sim      *entrasim.Sim
	audience string
	tenant   string
}

// check returns the claims of the bearer token, or an error saying why it is refused.
func (a *apiServer) check(token string) (entrasim.Claims, error) {
	c, err := a.sim.ValidateAccessToken(token)
	if err != nil {
		return c, err
	}
	if c.Audience != a.audience {
		return c, fmt.Errorf("audience %q, want %q", c.Audience, a.audience)
	}
	if c.TenantID != a.tenant {
		return c, fmt.Errorf("tenant %q, want %q", c.TenantID, a.tenant)
	}
	return c, nil
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return tok
}

// rawRefreshToken signs the simulator's user in through the device-code flow, as
// another tool (New-PartnerAccessToken, a CI bootstrap) would, and returns the raw
// refresh token for the public client: what a CI secret holds.
func rawRefreshToken(t testing.TB, sim *entrasim.Sim) string {
	t.Helper()
	sim.ApproveDeviceCodes(true)
	c := sim.HTTPClient()
	post := func(path string, form url.Values) map[string]any {
		resp, err := c.PostForm(sim.URL()+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	scope := "https://graph.microsoft.com/.default openid profile offline_access"
	dc := post("/organizations/oauth2/v2.0/devicecode", url.Values{"client_id": {entrasim.PublicClientID}, "scope": {scope}})
	code, _ := dc["device_code"].(string)
	if code == "" {
		t.Fatalf("no device code: %v", dc)
	}
	for range 10 {
		tok := post("/organizations/oauth2/v2.0/token", url.Values{
			"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id":   {entrasim.PublicClientID},
			"device_code": {code},
		})
		if rt, _ := tok["refresh_token"].(string); rt != "" {
			return rt
		}
		if tok["error"] != "authorization_pending" {
			t.Fatalf("device code: %v", tok)
		}
	}
	t.Fatal("device code never approved")
	return ""
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
