package mi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// served is a running mi serve.
type served struct {
	endpoint *url.URL
	header   string
	cmd      *exec.Cmd
	stderr   *strings.Builder
}

// serve starts mi serve --print-env json with args and reads what it printed; the
// process is stopped with SIGTERM when the test ends, and must exit 0.
func (e *env) serve(t *testing.T, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := e.command(ctx, nil, append([]string{"mi", "serve", "--print-env", "json"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = &lockedWriter{w: s.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer cancel()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("mi serve after SIGTERM: %v\nstderr: %s", err, s.stderr)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("mi serve still running 30s after SIGTERM")
		}
	})
	// mi serve closes stdout once it has printed: reading to EOF is what
	// eval "$(pctoken-helper mi serve &)" relies on.
	read := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(stdout); read <- b }()
	var out []byte
	select {
	case out = <-read:
	case <-time.After(time.Minute):
		t.Fatalf("mi serve did not close stdout\nstderr: %s", s.stderr)
	}
	var vars map[string]string
	if err := json.Unmarshal(out, &vars); err != nil {
		t.Fatalf("mi serve printed %q: %v\nstderr: %s", out, err, s.stderr)
	}
	if s.endpoint, err = url.Parse(vars["IDENTITY_ENDPOINT"]); err != nil || s.endpoint.Host == "" {
		t.Fatalf("IDENTITY_ENDPOINT %q", vars["IDENTITY_ENDPOINT"])
	}
	s.header = vars["IDENTITY_HEADER"]
	if len(s.header) != 64 {
		t.Fatalf("IDENTITY_HEADER %q", s.header)
	}
	return s
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// raw sends request bytes as they are (no client library cleaning the path or adding
// headers) and returns the response and its body.
func (s *served) raw(t *testing.T, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.endpoint.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", request, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(body)
}

// request is a well-formed request to the endpoint, changed by edit.
func (s *served) request(query string, headers ...string) string {
	return fmt.Sprintf("GET %s?%s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\nConnection: close\r\n%s\r\n",
		s.endpoint.Path, query, s.endpoint.Host, "X-IDENTITY-HEADER", s.header, strings.Join(headers, ""))
}

// TestServeRefusals: every refusal of the contract, as raw requests to a running mi
// serve: a 4xx, no token, no CORS header, and no request to the identity provider.
func TestServeRefusals(t *testing.T) {
	e := newEnv(t)
	s := e.serve(t, "--allow-resource", "arm", "--allow-resource", "graph", "--tenant-alias", "fabrikam="+entrasim.CustomerTenantID)
	arm := "api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"
	host, path := s.endpoint.Host, s.endpoint.Path
	replace := func(req, old, new string) string { return strings.Replace(req, old, new, 1) }
	good := s.request(arm)
	cases := []struct {
		name, req string
		status    int
	}{
		{"no header", replace(good, "X-IDENTITY-HEADER: "+s.header+"\r\n", ""), 401},
		{"wrong header", replace(good, s.header, strings.Repeat("a", 64)), 401},
		{"header in the query", replace(replace(good, "X-IDENTITY-HEADER: "+s.header+"\r\n", ""), "?", "?X-IDENTITY-HEADER="+s.header+"&"), 401},
		{"wrong Host", replace(good, "Host: "+host, "Host: attacker.example"), 403},
		{"rebound Host", replace(good, "Host: "+host, "Host: rebind.attacker.example:"+s.endpoint.Port()), 403},
		{"Origin", s.request(arm, "Origin: https://attacker.example\r\n"), 403},
		{"Referer", s.request(arm, "Referer: https://attacker.example/\r\n"), 403},
		{"Sec-Fetch-Site", s.request(arm, "Sec-Fetch-Site: cross-site\r\n"), 403},
		{"X-Forwarded-For", s.request(arm, "X-Forwarded-For: 203.0.113.9\r\n"), 403},
		{"Forwarded", s.request(arm, "Forwarded: for=203.0.113.9\r\n"), 403},
		{"backslash path", replace(good, path, strings.ReplaceAll(path, "/", `\`)), 400},
		{"backslash inside path", replace(good, path, strings.Replace(path, "/contoso", `\contoso`, 1)), 404},
		{"encoded path", replace(good, path, strings.ReplaceAll(path, "/", "%2F")), 400},
		{"encoded slash inside path", replace(good, path, strings.Replace(path, "/contoso/", "/contoso%2F", 1)), 404},
		{"dot segments", replace(good, path, "/pctoken-helper/x/.."+strings.TrimPrefix(path, "/pctoken-helper")), 404},
		{"POST", replace(good, "GET ", "POST "), 405},
		{"OPTIONS", replace(good, "GET ", "OPTIONS "), 405},
		{"OPTIONS preflight", replace(s.request(arm, "Access-Control-Request-Method: GET\r\n"), "GET ", "OPTIONS "), 405},
		{"unknown selector", s.request(arm + "&client_id=00000000-0000-0000-0000-000000000000"), 400},
		{"unknown mi_res_id", s.request(arm + "&mi_res_id=%2Fsubscriptions%2Fx%2FresourceGroups%2Fy"), 400},
		{"unknown tenant", replace(good, path, strings.Replace(path, "/home", "/"+entrasim.CustomerTenantID, 1)), 404},
		{"resource not allowed", s.request("api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net"), 403},
		{"no api-version", s.request("resource=https%3A%2F%2Fmanagement.azure.com"), 400},
	}
	before := grants(e.Sim)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := s.raw(t, c.req)
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("status %d is not a refusal", resp.StatusCode)
			}
			if strings.Contains(body, "access_token") || strings.Contains(body, "eyJ") || strings.Contains(body, s.header) {
				t.Errorf("body carries a token or the secret: %s", body)
			}
			for k := range resp.Header {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Errorf("CORS header %s: %s", k, resp.Header.Get(k))
				}
			}
		})
	}
	if n := grants(e.Sim) - before; n != 0 {
		t.Errorf("refused requests caused %d redemptions", n)
	}

	// The same endpoint answers a well-formed request, and the alias.
	for _, q := range []string{arm, arm + "&client_id=fabrikam"} {
		resp, body := s.raw(t, s.request(q))
		var tok struct {
			AccessToken string `json:"access_token"`
			ExpiresOn   string `json:"expires_on"`
			Resource    string `json:"resource"`
			TokenType   string `json:"token_type"`
			ClientID    string `json:"client_id"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &tok) != nil {
			t.Fatalf("good request %s: %d %s", q, resp.StatusCode, body)
		}
		c, err := e.Sim.ValidateAccessToken(tok.AccessToken)
		if err != nil || c.Audience != "https://management.azure.com" || tok.TokenType != "Bearer" ||
			tok.Resource != "https://management.azure.com/" || tok.ClientID != entrasim.PublicClientID || tok.ExpiresOn != fmt.Sprint(c.ExpiresAt.Unix()) {
			t.Errorf("answer %+v, claims %+v, %v", tok, c, err)
		}
	}
}

// TestServeHerd: 64 SDK calls at once for a resource not cached, or cached but about
// to expire, cause one redemption.
func TestServeHerd(t *testing.T) {
	e := newEnv(t)
	// An ARM token that expires within --min-validity (5m): stale for the endpoint.
	e.Sim.SetTokenLifetime(2 * time.Minute)
	e.MustRun("get", "--scope", "arm", "--min-validity", "1m")
	e.Sim.SetTokenLifetime(0)
	s := e.serve(t)
	e.Sim.SetLatency(200 * time.Millisecond) // the herd arrives while the first refresh runs
	for _, resource := range []string{"https://graph.microsoft.com", "https://management.azure.com"} {
		before := grants(e.Sim)
		var wg sync.WaitGroup
		tokens := make([]string, 64)
		for i := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", s.endpoint.String()+"?api-version=2019-08-01&resource="+url.QueryEscape(resource), nil)
				req.Header.Set("X-IDENTITY-HEADER", s.header)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				var tok struct {
					AccessToken string `json:"access_token"`
					ExpiresOn   string `json:"expires_on"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 {
					t.Errorf("status %d, %v", resp.StatusCode, err)
				}
				tokens[i] = tok.AccessToken
			}()
		}
		wg.Wait()
		if n := grants(e.Sim) - before; n != 1 {
			t.Errorf("%s: 64 concurrent calls caused %d redemptions, want 1", resource, n)
		}
		c, err := e.Sim.ValidateAccessToken(tokens[0])
		if err != nil || time.Until(c.ExpiresAt) < 30*time.Minute {
			t.Errorf("%s: token %+v, %v; want a fresh one", resource, c, err)
		}
		for _, tok := range tokens[1:] {
			if tok != tokens[0] {
				t.Fatalf("%s: the herd got different tokens", resource)
			}
		}
	}
}

// TestServeRefusesAnotherUser: a process of another user that somehow has the header
// (here: given it) is refused on Linux, where the endpoint can tell who connects.
// Needs root, to run the client as nobody; the client is Node.
func TestServeRefusesAnotherUser(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		t.Skip("needs Linux and root to run a client as another user")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not on PATH")
		}
		t.Skip("node is not on PATH")
	}
	e := newEnv(t)
	s := e.serve(t)
	// node:http, not fetch: Node's fetch sends Sec-Fetch-Mode, which the endpoint
	// refuses as a browser's header (docs/managed-identity.md).
	script := `const u = new URL(process.env.IDENTITY_ENDPOINT + "?api-version=2019-08-01&resource=https://management.azure.com");
require("http").get(u, {headers: {"X-IDENTITY-HEADER": process.env.IDENTITY_HEADER}}, r => {
  let body = ""; r.on("data", d => body += d); r.on("end", () => console.log(r.statusCode + " " + body));
}).on("error", e => { console.log("0 " + e); process.exit(1) })`
	for _, c := range []struct {
		uid  uint32
		want string
	}{{65534, "403 "}, {0, "200 "}} {
		cmd := exec.Command(node, "-e", script)
		cmd.Env = []string{"IDENTITY_ENDPOINT=" + s.endpoint.String(), "IDENTITY_HEADER=" + s.header, "HOME=/"}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.uid, Gid: c.uid}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node as uid %d: %v %s", c.uid, err, out)
		}
		if !strings.HasPrefix(string(out), c.want) {
			t.Errorf("uid %d: %s, want %s", c.uid, out, c.want)
		}
		if c.uid != 0 && strings.Contains(string(out), "access_token") {
			t.Errorf("uid %d got a token", c.uid)
		}
	}
}

// TestServeFailures: the helper's own failures reach the caller with a status the SDKs
// act on and the helper's message and remedy; mi serve and mi exec refuse a bad start.
func TestServeFailures(t *testing.T) {
	e := newEnv(t)
	s := e.serve(t, "--timeout", "20s")
	e.Sim.FailNext(100, http.StatusServiceUnavailable)
	resp, body := s.raw(t, s.request("api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net"))
	if resp.StatusCode != 503 || !strings.Contains(body, `"statusCode":503`) || !strings.Contains(body, "hint: try again later") || strings.Contains(body, "access_token") {
		t.Errorf("Entra failing: %d %s", resp.StatusCode, body)
	}
	e.Sim.FailNext(0, 0)

	for _, args := range [][]string{
		{"mi", "serve", "--listen", "0.0.0.0:0"},
		{"mi", "serve", "--listen", "localhost:0"},
		{"mi", "exec", "--tenant", "a/b", "--", self(t)},
		{"mi", "exec", "--tenant-alias", "x=a/b", "--", self(t)},
		{"mi", "exec", "--allow-resource", "not a resource", "--", self(t)},
	} {
		res := e.run(t, map[string]string{childVar: "env"}, args...)
		if res.Code != 2 || res.Stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, want exit 2 and no child\nstderr: %s", args, res.Code, res.Stdout, res.Stderr)
		}
	}
	res := e.run(t, map[string]string{childVar: "env", "PCTOKEN_PROFILE": "never-consented"}, "mi", "exec", "--", self(t))
	if res.Code != 3 || res.Stdout != "" || !strings.Contains(res.Stderr, "consent") {
		t.Errorf("never consented: exit %d, stdout %q, stderr %q; want exit 3 before the child runs", res.Code, res.Stdout, res.Stderr)
	}
}
