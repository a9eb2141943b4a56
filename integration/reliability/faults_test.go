package reliability

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// The helper's retry policy (idphttp's defaults), as the tests below expect it.
const (
	maxAttempts   = 4
	baseDelay     = 200 * time.Millisecond
	maxRetryAfter = 30 * time.Second
)

// retryLine is a --verbose line of the retry transport.
var retryLine = regexp.MustCompile(`retrying after (.+) in (\S+) \(attempt (\d+)/(\d+)\)`)

type retry struct {
	why     string
	wait    time.Duration
	attempt int
}

func retries(t testing.TB, stderr string) []retry {
	t.Helper()
	var out []retry
	for _, m := range retryLine.FindAllStringSubmatch(stderr, -1) {
		wait, err := time.ParseDuration(m[2])
		if err != nil {
			t.Fatalf("retry line %q: %v", m[0], err)
		}
		n, _ := strconv.Atoi(m[3])
		out = append(out, retry{m[1], wait, n})
	}
	return out
}

// tokenRequests is how many requests reached the simulator's token endpoint since the
// last ResetStats, faulty ones included.
func tokenRequests(e *harness.Env) int { return e.Sim.Stats().Requests["token"] }

// consentedWithShortToken consents and caches a graph token that expires within the
// default 5m min-validity but not before the test ends: every get wants to refresh it.
func consentedWithShortToken(t *testing.T) (*harness.Env, jsonToken) {
	t.Helper()
	e := newEnv(t)
	e.Consent()
	e.Sim.SetTokenLifetime(3 * time.Minute)
	tok := decodeToken(t, e.MustRun("get", "--scope", "graph").Stdout)
	e.Sim.SetTokenLifetime(0)
	e.Sim.ResetStats()
	return e, tok
}

// TestServerErrorsAreRetried: 5xx answers are tried again with backoff, and a refresh
// that succeeds on the third attempt is a success.
func TestServerErrorsAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	for _, status := range []int{500, 502, 503, 504} {
		e.Sim.ResetStats()
		e.Sim.FailNext(2, status)
		res, _ := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh", "-v")
		if res.Code != 0 {
			t.Fatalf("%d twice then success: exit %d\n%s", status, res.Code, res.Stderr)
		}
		if tok := decodeToken(t, res.Stdout); tok.Cached {
			t.Fatalf("%d: answered from the cache", status)
		}
		if n := tokenRequests(e); n != 3 {
			t.Fatalf("%d twice then success: %d token requests, want 3", status, n)
		}
		if r := retries(t, res.Stderr); len(r) != 2 || r[0].why != strconv.Itoa(status) {
			t.Fatalf("%d: retries logged under -v: %+v\n%s", status, r, res.Stderr)
		}
	}
}

// TestServerErrorsGiveUpWithinBounds: a failing identity provider gets exactly
// maxAttempts tries, waits with full-jitter backoff (each wait at most its doubling
// ceiling, and not the same from run to run), and the get ends in exit 4 with the
// error on stderr and in the json answer, long before its --timeout.
func TestServerErrorsGiveUpWithinBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	var waits []time.Duration
	for run := 0; run < 4; run++ {
		e.Sim.ResetStats()
		e.Sim.FailNext(100, 503)
		res, took := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh", "-v")
		noPanic(t, "503 forever", res)
		if res.Code != 4 {
			t.Fatalf("503 forever: exit %d, want 4\n%s", res.Code, res.Stderr)
		}
		if n := tokenRequests(e); n != maxAttempts {
			t.Fatalf("503 forever: %d token requests, want %d", n, maxAttempts)
		}
		// Backoff ceilings 200ms, 400ms, 800ms: at most 1.4s of waiting.
		if took > 10*time.Second {
			t.Fatalf("503 forever took %s", took)
		}
		if !strings.Contains(res.Stderr, "error: ") || !strings.Contains(res.Stderr, "hint: ") {
			t.Fatalf("no error and hint on stderr:\n%s", res.Stderr)
		}
		var je jsonError
		if err := json.Unmarshal([]byte(res.Stdout), &je); err != nil || je.Error == nil || je.Error.Code != "transient" {
			t.Fatalf("stdout is not a transient error object: %s", res.Stdout)
		}
		r := retries(t, res.Stderr)
		if len(r) != maxAttempts-1 {
			t.Fatalf("%d retries logged, want %d:\n%s", len(r), maxAttempts-1, res.Stderr)
		}
		for i, x := range r {
			ceiling := baseDelay << i
			if x.attempt != i+2 || x.wait < 0 || x.wait > ceiling {
				t.Fatalf("retry %d: attempt %d after %s; want attempt %d after at most %s", i, x.attempt, x.wait, i+2, ceiling)
			}
			waits = append(waits, x.wait)
		}
	}
	distinct := map[time.Duration]bool{}
	for _, w := range waits {
		distinct[w] = true
	}
	if len(distinct) < len(waits)/2 {
		t.Fatalf("backoff waits show no jitter: %v", waits)
	}
	t.Logf("backoff waits over 4 runs: %v", waits)
}

// TestThrottlingHonoursRetryAfter: a 429 is tried again after the server's
// Retry-After, not sooner.
func TestThrottlingHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	e.Sim.ResetStats()
	e.Sim.ThrottleNext(1, 2*time.Second)
	res, took := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh", "-v")
	if res.Code != 0 {
		t.Fatalf("throttled once: exit %d\n%s", res.Code, res.Stderr)
	}
	if n := tokenRequests(e); n != 2 {
		t.Fatalf("throttled once: %d token requests, want 2", n)
	}
	if r := retries(t, res.Stderr); len(r) != 1 || r[0].why != "429" || r[0].wait != 2*time.Second {
		t.Fatalf("retry after 429 not after Retry-After: %+v\n%s", r, res.Stderr)
	}
	if took < 2*time.Second {
		t.Fatalf("retried after %s, before Retry-After (2s) passed", took)
	}
}

// TestThrottlingBeyondTimeoutFailsFast: when Retry-After is longer than what is left
// of --timeout, the helper does not start a wait it cannot finish: exit 4 at once.
func TestThrottlingBeyondTimeoutFailsFast(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	e.Sim.ResetStats()
	e.Sim.ThrottleNext(100, 2*time.Minute)
	res, took := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh", "--timeout", "10s", "-v")
	if res.Code != 4 {
		t.Fatalf("throttled for 2m with --timeout 10s: exit %d, want 4\n%s", res.Code, res.Stderr)
	}
	if n := tokenRequests(e); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	if took > 5*time.Second {
		t.Fatalf("took %s: it waited for a Retry-After it could not see out", took)
	}
	if !strings.Contains(res.Stderr, "would pass the deadline") {
		t.Fatalf("no diagnostic under -v:\n%s", res.Stderr)
	}
}

// TestThrottlingRetryAfterIsCapped: a Retry-After of ten minutes is waited for at most
// maxRetryAfter (30s), then the request is tried again. Slow: skipped with -short.
func TestThrottlingRetryAfterIsCapped(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 30s")
	}
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	e.Sim.ResetStats()
	e.Sim.ThrottleNext(1, 10*time.Minute)
	res, took := timedRun(t, e, 2*time.Minute, "", "get", "--scope", "graph", "--force-refresh", "--timeout", "50s", "-v")
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	if r := retries(t, res.Stderr); len(r) != 1 || r[0].wait != maxRetryAfter {
		t.Fatalf("want one retry after the %s cap: %+v", maxRetryAfter, r)
	}
	if took < maxRetryAfter || took > maxRetryAfter+15*time.Second {
		t.Fatalf("took %s, want a little over %s", took, maxRetryAfter)
	}
	if n := tokenRequests(e); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}

// TestHangingProviderEndsWithinTimeout: an identity provider that accepts and never
// answers ends every token command in exit 4 within its --timeout, never a hang.
func TestHangingProviderEndsWithinTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	const timeout = 2 * time.Second
	cases := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"get", "", []string{"get", "--force-refresh"}},
		{"get -o token", "", []string{"get", "--force-refresh", "-o", "token"}},
		{"exec-credential", "", []string{"exec-credential", "--force-refresh"}},
		{"git-credential get", "protocol=https\nhost=dev.azure.com\n\n", []string{"git-credential", "--force-refresh", "get"}},
		{"get --request", `{"id":"a","force_refresh":true}` + "\n" + `{"id":"b","force_refresh":true,"tenant":"` + entrasim.CustomerTenantID + `"}` + "\n", []string{"get", "--request", "-"}},
		{"renew", "", []string{"renew"}},
	}
	for _, c := range cases {
		e.Sim.HangNext(1000)
		args := append(c.args, "--timeout", timeout.String())
		res, took := timedRun(t, e, 30*time.Second, c.stdin, args...)
		noPanic(t, c.name, res)
		if res.Code != 4 {
			t.Fatalf("%s: exit %d, want 4\nstdout: %s\nstderr: %s", c.name, res.Code, res.Stdout, res.Stderr)
		}
		if took > timeout+3*time.Second {
			t.Fatalf("%s: took %s with --timeout %s", c.name, took, timeout)
		}
		if c.name == "get --request" {
			for _, id := range []string{`"a"`, `"b"`} {
				if !strings.Contains(res.Stdout, `"id":`+id) {
					t.Fatalf("%s: no answer for request %s:\n%s", c.name, id, res.Stdout)
				}
			}
		}
		if c.name != "renew" && c.name != "get --request" && !strings.Contains(res.Stderr, "error: ") {
			t.Fatalf("%s: no error on stderr:\n%s", c.name, res.Stderr)
		}
	}
	e.Sim.HangNext(0)
}

// TestNetworkErrorsAreRetried: connections reset by the network are tried again with
// backoff, up to maxAttempts, then exit 4. The token endpoint is reached through a
// TCP proxy that resets the connections it is told to (the metadata document the
// helper keeps on disk is edited to send the token request through it).
func TestNetworkErrorsAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	p := startFaultProxy(t, strings.TrimPrefix(e.Sim.URL(), "https://"))
	routeTokenEndpoint(t, e, p.addr())

	e.Sim.ResetStats()
	res, _ := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh", "-v")
	if res.Code != 0 || p.connections() == 0 || tokenRequests(e) != 1 {
		t.Fatalf("through the proxy: exit %d, %d connections, %d token requests\n%s", res.Code, p.connections(), tokenRequests(e), res.Stderr)
	}

	p.reset(2)
	before := p.connections()
	res, _ = timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh", "-v")
	if res.Code != 0 {
		t.Fatalf("two resets then success: exit %d\n%s", res.Code, res.Stderr)
	}
	if n := p.connections() - before; n != 3 {
		t.Fatalf("two resets then success: %d connections, want 3\n%s", n, res.Stderr)
	}
	if r := retries(t, res.Stderr); len(r) != 2 || !strings.HasPrefix(r[0].why, "error:") {
		t.Fatalf("resets were not retried as network errors: %+v\n%s", r, res.Stderr)
	}

	p.reset(1000)
	before = p.connections()
	res, took := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh")
	noPanic(t, "network down", res)
	if res.Code != 4 {
		t.Fatalf("network down: exit %d, want 4\n%s", res.Code, res.Stderr)
	}
	if n := p.connections() - before; n != maxAttempts {
		t.Fatalf("network down: %d connections, want %d", n, maxAttempts)
	}
	if took > 10*time.Second {
		t.Fatalf("network down: took %s", took)
	}
	if !strings.Contains(res.Stderr, "cannot reach the identity provider") {
		t.Fatalf("network down: unclear error:\n%s", res.Stderr)
	}
}

// faultProxy forwards TCP connections to a target, except the next n it is told to
// reset: those are closed at once with a TCP reset.
type faultProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	resets  int
	conns   int
	open    map[net.Conn]bool
	closing bool
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, open: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closing = true
		for c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) reset(n int) {
	p.mu.Lock()
	p.resets = n
	p.mu.Unlock()
}

func (p *faultProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		c.Close()
		return false
	}
	p.open[c] = true
	return true
}

func (p *faultProxy) serve(c net.Conn) {
	p.mu.Lock()
	p.conns++
	doReset := p.resets > 0
	if doReset {
		p.resets--
	}
	p.mu.Unlock()
	if doReset {
		c.(*net.TCPConn).SetLinger(0) // close sends RST
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c) || !p.track(up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.open, c)
	delete(p.open, up)
	p.mu.Unlock()
}

// routeTokenEndpoint makes proxyAddr the helper's authority host and moves the
// openid-configuration documents the helper keeps on disk to name it, so that the
// token request, and nothing else, is reached through the proxy. (The helper sends
// requests only to its authority host, so a document naming the proxy under the
// simulator's host would be refused.) The documents are the helper's own cache: the
// user owns that folder, like the rest of it.
func routeTokenEndpoint(t *testing.T, e *harness.Env, proxyAddr string) {
	t.Helper()
	simHost := strings.TrimPrefix(e.Sim.URL(), "https://")
	files, _ := filepath.Glob(filepath.Join(cacheDir(e), "metadata", "*.json"))
	moved := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			URL string `json:"url"`
		}
		if json.Unmarshal(b, &doc) != nil || !strings.HasSuffix(doc.URL, "/openid-configuration") {
			continue
		}
		b = []byte(strings.ReplaceAll(string(b), simHost, proxyAddr))
		// A stored document's name is the SHA-256 of its URL (idphttp).
		sum := sha256.Sum256([]byte(strings.ReplaceAll(doc.URL, simHost, proxyAddr)))
		if err := os.WriteFile(filepath.Join(filepath.Dir(f), hex.EncodeToString(sum[:])+".json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		moved++
	}
	if moved == 0 {
		t.Fatalf("no openid-configuration document on disk to route through the proxy (files: %v)", files)
	}
	e.Vars["PCTOKEN_AUTHORITY_HOST"] = "https://" + proxyAddr
}

// TestFinalErrorsAreNeverRetried: invalid_grant (an expired or revoked refresh token)
// and invalid_client (a wrong client secret) are answered after one token request,
// with the exit code and the command that fixes them.
func TestFinalErrorsAreNeverRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	for _, c := range []struct {
		name   string
		break_ func()
		aadsts string
	}{
		{"expired", e.Sim.ExpireRefreshTokens, "AADSTS700082"},
		{"revoked", e.Sim.RevokeRefreshTokens, "AADSTS50173"},
	} {
		c.break_()
		e.Sim.ResetStats()
		res, took := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh", "-v")
		if res.Code != 3 {
			t.Fatalf("%s: exit %d, want 3\n%s", c.name, res.Code, res.Stderr)
		}
		if n := tokenRequests(e); n != 1 {
			t.Fatalf("%s (invalid_grant): %d token requests, want 1", c.name, n)
		}
		if len(retries(t, res.Stderr)) != 0 || took > 5*time.Second {
			t.Fatalf("%s: retried or slow (%s):\n%s", c.name, took, res.Stderr)
		}
		if !strings.Contains(res.Stderr, c.aadsts) || !strings.Contains(res.Stderr, "hint: pctoken-helper consent --profile default") {
			t.Fatalf("%s: stderr lacks the code or the remedy:\n%s", c.name, res.Stderr)
		}
		e.Consent() // a new sign-in for the next case
	}

	// invalid_client: a confidential client whose secret is wrong.
	c := newEnv(t)
	consentConfidential(t, c)
	c.MustRun("get", "--scope", "graph", "--force-refresh")
	c.Sim.ResetStats()
	c.Vars["PCTOKEN_CLIENT_SECRET"] = "wrong-secret-value"
	res, _ := timedRun(t, c, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh", "-v")
	if res.Code != 5 {
		t.Fatalf("wrong secret: exit %d, want 5\n%s", res.Code, res.Stderr)
	}
	if n := tokenRequests(c); n != 1 {
		t.Fatalf("wrong secret (invalid_client): %d token requests, want 1", n)
	}
	if !strings.Contains(res.Stderr, "AADSTS7000215") || len(retries(t, res.Stderr)) != 0 {
		t.Fatalf("wrong secret: stderr:\n%s", res.Stderr)
	}
	if strings.Contains(res.Stderr+res.Stdout, "wrong-secret-value") {
		t.Fatal("the secret appears in the output")
	}
}

// consentConfidential consents as the simulator's confidential client, the secret
// read from stdin and kept in the store, through the browser flow (the test binary is
// the browser).
func consentConfidential(t *testing.T, e *harness.Env) harness.Result {
	t.Helper()
	e.UseTestBinaryAsBrowser()
	e.Vars["PCTOKEN_CLIENT_ID"] = entrasim.ConfidentialClientID
	res, _ := timedRun(t, e, time.Minute, entrasim.ClientSecret+"\n", "consent", "--client-secret-stdin", "--timeout", "30s", "-v")
	if res.Code != 0 {
		t.Fatalf("confidential consent: exit %d\n%s", res.Code, res.Stderr)
	}
	return res
}

// TestTransientFailureFallsBackToValidCachedToken: when a refresh fails for a transient
// reason (5xx, 429 past the deadline, a hang) and the cached token is still valid,
// that token is returned with a warning on stderr. With --force-refresh (the caller
// demanded a redemption), once the token has expired, or when the failure needs
// consent, the failure is reported instead.
func TestTransientFailureFallsBackToValidCachedToken(t *testing.T) {
	t.Parallel()
	e, cached := consentedWithShortToken(t)
	faults := []struct {
		name   string
		inject func()
	}{
		{"503", func() { e.Sim.FailNext(100, 503) }},
		{"429", func() { e.Sim.ThrottleNext(100, 2*time.Minute) }},
		{"hang", func() { e.Sim.HangNext(100) }},
	}
	for _, f := range faults {
		for _, extra := range [][]string{nil, {"--force-refresh"}} {
			f.inject()
			args := append([]string{"get", "--scope", "graph", "--timeout", "3s"}, extra...)
			res, _ := timedRun(t, e, 30*time.Second, "", args...)
			name := f.name + " " + strings.Join(extra, " ")
			if extra != nil {
				// A caller that demanded a redemption must learn it did not happen.
				if res.Code != 4 || strings.Contains(res.Stdout, cached.AccessToken) {
					t.Fatalf("%s: exit %d, want 4 and no token\n%s", name, res.Code, res.Stderr)
				}
				continue
			}
			if res.Code != 0 {
				t.Fatalf("%s: exit %d, want the cached token\n%s", name, res.Code, res.Stderr)
			}
			tok := decodeToken(t, res.Stdout)
			if tok.AccessToken != cached.AccessToken || !tok.Cached {
				t.Fatalf("%s: not the cached token: %s", name, res.Stdout)
			}
			if !strings.Contains(res.Stderr, "warning: refresh failed") || !strings.Contains(res.Stderr, "returning the cached token") {
				t.Fatalf("%s: no warning on stderr:\n%s", name, res.Stderr)
			}
		}
	}
	e.Sim.FailNext(0, 500)
	e.Sim.ThrottleNext(0, 0)
	e.Sim.HangNext(0)

	// Consent needed is not transient: the valid cached token does not hide it.
	e.Sim.ExpireRefreshTokens()
	res, _ := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph")
	if res.Code != 3 {
		t.Fatalf("expired refresh token with a valid cached token: exit %d, want 3\n%s", res.Code, res.Stderr)
	}

	// An expired cached token is never handed out.
	e.Consent()
	e.Sim.SetTokenLifetime(time.Second)
	decodeToken(t, e.MustRun("get", "--scope", "arm").Stdout)
	e.Sim.SetTokenLifetime(0)
	time.Sleep(2100 * time.Millisecond)
	e.Sim.FailNext(100, 503)
	res, _ = timedRun(t, e, 30*time.Second, "", "get", "--scope", "arm")
	if res.Code != 4 || strings.Contains(res.Stderr, "returning the cached token") {
		t.Fatalf("transient failure with an expired cached token: exit %d, want 4\n%s", res.Code, res.Stderr)
	}

}
