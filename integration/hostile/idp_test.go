package hostile

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/integration/testca"
)

// sink is a host the helper must never talk to: it counts every request and keeps
// its body, so a test can tell whether a secret arrived.
type sink struct {
	url    string
	mu     sync.Mutex
	count  int
	bodies []string
}

func newSink(t *testing.T, tlsConfig *tls.Config) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{url: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.count++
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		http.Error(w, "not here", http.StatusTeapot)
	}), ReadHeaderTimeout: 10 * time.Second}
	if tlsConfig != nil {
		s.url = "https://" + ln.Addr().String()
		ln = tls.NewListener(ln, tlsConfig)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sink) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// hook answers a request to the hostile identity provider in its own way, or
// returns false to let the simulator answer it.
type hook func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool

// idp is the hostile identity provider: a TLS proxy in front of the simulator on
// its own host and port, whose answers name it instead of the simulator.
type idp struct {
	t     *testing.T
	sim   *entrasim.Sim
	url   string // https://127.0.0.1:PORT, the authority host under attack
	other *sink  // https on another port, a certificate the helper trusts
	plain *sink  // plain http

	mu      sync.Mutex
	hook    hook
	secrets map[string]bool // refresh tokens, secrets, assertions and codes seen
	paths   map[string]int  // requests per path
}

// hostile starts the proxy and the two sinks and points e at them: e's helper
// trusts both CAs and uses the proxy as its authority host. The profile should be
// consented (against the simulator) first: see consented.
func hostile(t *testing.T, e *harness.Env) *idp {
	t.Helper()
	ca := testca.New(t)
	p := &idp{t: t, sim: e.Sim, secrets: map[string]bool{}, paths: map[string]int{}}
	p.other = newSink(t, ca.ServerTLS(t, "127.0.0.1", "localhost"))
	p.plain = newSink(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.url = "https://" + ln.Addr().String()
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(tls.NewListener(ln, ca.ServerTLS(t, "127.0.0.1", "localhost")))
	t.Cleanup(func() { srv.Close() })

	simCA, err := os.ReadFile(e.Sim.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(e.Dir, "cas.pem")
	if err := os.WriteFile(bundle, append(simCA, ca.PEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	e.Vars["SSL_CERT_FILE"] = bundle
	e.Vars["PCTOKEN_AUTHORITY_HOST"] = p.url
	return p
}

func (p *idp) set(h hook) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

func (p *idp) hits(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paths[path]
}

// seen lists the credentials the helper sent to the proxy.
func (p *idp) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for s := range p.secrets {
		out = append(out, s)
	}
	return out
}

func (p *idp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	form, _ := url.ParseQuery(string(body))
	p.mu.Lock()
	for _, k := range []string{"refresh_token", "client_secret", "client_assertion", "code"} {
		if v := form.Get(k); v != "" {
			p.secrets[v] = true
		}
	}
	p.paths[r.URL.Path]++
	h := p.hook
	p.mu.Unlock()
	if h != nil && h(p, w, r, body) {
		return
	}
	status, hdr, answer := p.forward(r, body)
	p.write(w, status, hdr, answer)
}

// forward asks the simulator and returns its answer with the simulator's URL
// replaced by the proxy's.
func (p *idp) forward(r *http.Request, body []byte) (int, http.Header, []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.sim.URL()+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return http.StatusBadGateway, nil, nil
	}
	for _, k := range []string{"Content-Type", "Authorization", "Client-Request-Id"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := p.sim.HTTPClient().Do(req)
	if err != nil {
		return http.StatusBadGateway, nil, nil
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, bytes.ReplaceAll(answer, []byte(p.sim.URL()), []byte(p.url))
}

func (p *idp) write(w http.ResponseWriter, status int, hdr http.Header, body []byte) {
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v := hdr.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(status)
	w.Write(body)
}

// tokenAnswer forwards a token request and lets edit change the simulator's JSON
// answer before it is sent.
func tokenAnswer(edit func(p *idp, answer map[string]any)) hook {
	return func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !isToken(r) {
			return false
		}
		status, hdr, raw := p.forward(r, body)
		var answer map[string]any
		if status != http.StatusOK || json.Unmarshal(raw, &answer) != nil {
			p.write(w, status, hdr, raw)
			return true
		}
		edit(p, answer)
		out, _ := json.Marshal(answer)
		p.write(w, status, hdr, out)
		return true
	}
}

// editClaims rewrites the access token's claims, keeping its header and (now
// invalid) signature: the helper does not verify signatures, the resource does.
func editClaims(answer map[string]any, edit func(claims map[string]any)) {
	tok, _ := answer["access_token"].(string)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		panic("the simulator's access token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		panic(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		panic(err)
	}
	edit(claims)
	raw, _ = json.Marshal(claims)
	answer["access_token"] = parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
}

func isToken(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token")
}

func isOpenIDConfig(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration")
}

// env is a user whose profile was consented against the simulator itself, then
// pointed at a hostile identity provider in front of it.
func env(t *testing.T) (*harness.Env, *idp) {
	t.Helper()
	e := harness.New(t)
	e.Consent()
	// Diagnostics on: what -v prints is held to the same rule as everything else.
	e.Vars["PCTOKEN_VERBOSE"] = "1"
	return e, hostile(t, e)
}

// result is one run of the helper.
type result struct {
	harness.Result
	took  time.Duration
	rssKB int64 // the process's peak resident set
}

// run runs the helper and fails the test if it is still running after limit: the
// helper must never hang.
func run(t *testing.T, e *harness.Env, limit time.Duration, args ...string) result {
	t.Helper()
	return runStdin(t, e, limit, "", args...)
}

// runStdin is run with stdin.
func runStdin(t *testing.T, e *harness.Env, limit time.Duration, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := e.Command(ctx, args...)
	cmd.Dir = e.Dir
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := result{Result: harness.Result{Stdout: out.String(), Stderr: errb.String()}, took: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("pctoken-helper %s: still running after %s\nstderr: %s", strings.Join(args, " "), limit, errb.String())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run pctoken-helper: %v", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.rssKB = ru.Maxrss
	}
	return res
}

// refused checks a failed run: its exit code, that stderr says why (every one of
// want), that stdout is empty, and that no secret the helper knows was printed.
func (p *idp) refused(t *testing.T, res result, code int, want ...string) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.Code, code, res.Stdout, res.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.Stderr, w) {
			t.Fatalf("stderr does not say %q:\n%s", w, res.Stderr)
		}
	}
	// With -o json the same error is the answer on stdout; nothing else may be.
	if res.Stdout != "" {
		var answer struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(res.Stdout), &answer); err != nil || answer.Error.Message == "" {
			t.Fatalf("stdout of a failed get: %q", res.Stdout)
		}
	}
	p.noLeak(t, res)
}

func (p *idp) noLeak(t *testing.T, res result) {
	t.Helper()
	for _, s := range append(p.seen(), entrasim.ClientSecret, harness.Passphrase) {
		if strings.Contains(res.Stdout+res.Stderr, s) {
			t.Fatalf("a secret (%d characters) was printed:\nstdout: %s\nstderr: %s", len(s), res.Stdout, res.Stderr)
		}
	}
}

// nothingAtOtherHosts checks that no request reached the other hosts at all.
func (p *idp) nothingAtOtherHosts(t *testing.T) {
	t.Helper()
	if n, m := p.other.requests(), p.plain.requests(); n+m != 0 {
		t.Fatalf("requests reached other hosts: %d over https, %d over http; bodies %q %q", n, m, p.other.bodies, p.plain.bodies)
	}
}

// cached lists the access-token cache's entries with their modification times.
func cached(t *testing.T, e *harness.Env) map[string]time.Time {
	t.Helper()
	dir := filepath.Join(e.Vars["XDG_CACHE_HOME"], "pctoken-helper")
	out := map[string]time.Time{}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, de := range entries {
		if de.Type().IsRegular() && strings.HasSuffix(de.Name(), ".json") {
			fi, err := de.Info()
			if err != nil {
				t.Fatal(err)
			}
			out[de.Name()] = fi.ModTime()
		}
	}
	return out
}

func sameCache(t *testing.T, before, after map[string]time.Time) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("the cache changed: %d entries before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if !after[k].Equal(v) {
			t.Fatalf("cache entry %s was rewritten", k)
		}
	}
}

func metadataDir(e *harness.Env) string {
	return filepath.Join(e.Vars["XDG_CACHE_HOME"], "pctoken-helper", "metadata")
}

func itoa(n int) string { return strconv.Itoa(n) }
