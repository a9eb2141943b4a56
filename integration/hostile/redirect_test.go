package hostile

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// The proxy itself is honest until a test makes it lie: a get through it works.
func TestProxyPassesThrough(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	res := run(t, e, 30*time.Second, "get", "--scope", "graph", "--tenant", entrasim.CustomerTenantID)
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	p.noLeak(t, res)
	p.nothingAtOtherHosts(t)
	if len(p.seen()) == 0 {
		t.Fatal("the proxy saw no refresh token")
	}
}

// A redirect from the token endpoint is never followed, whatever its status and
// wherever it points (plain http, another host, the same host): the refresh token
// is sent once, to the authority host, and the failure is a configuration error
// naming where the redirect pointed.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	for _, c := range []struct {
		name   string
		status int
		target func() string
		shown  func() string
	}{
		{"307 to http", http.StatusTemporaryRedirect, func() string { return p.plain.url + "/token" }, func() string { return p.plain.url }},
		{"308 to another host", http.StatusPermanentRedirect, func() string { return p.other.url + "/token" }, func() string { return p.other.url }},
		{"307 to the same host", http.StatusTemporaryRedirect, func() string { return p.url + "/elsewhere/token" }, func() string { return p.url }},
		{"302 to another host", http.StatusFound, func() string { return p.other.url + "/token" }, func() string { return p.other.url }},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := c.target()
			p.set(func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
				if !isToken(r) {
					return false
				}
				http.Redirect(w, r, target, c.status)
				return true
			})
			before := cached(t, e)
			tokensBefore := p.hits(r0(p))
			res := run(t, e, 60*time.Second, "get", "--scope", "graph", "--force-refresh", "-o", "json")
			p.refused(t, res, 5, "redirect", c.shown())
			p.nothingAtOtherHosts(t)
			if n := p.hits("/elsewhere/token"); n != 0 {
				t.Fatalf("the same-host redirect was followed %d times", n)
			}
			if n := p.hits(r0(p)) - tokensBefore; n != 1 {
				t.Fatalf("%d token requests, want 1 (a redirect is not retried)", n)
			}
			sameCache(t, before, cached(t, e))
		})
	}
}

// Every command that redeems the refresh token is held to the same rule.
func TestRedirectsAreNeverFollowedByAnyCommand(t *testing.T) {
	t.Parallel()
	e, p := env(t)
	p.set(func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !isToken(r) {
			return false
		}
		http.Redirect(w, r, p.other.url+"/token", http.StatusTemporaryRedirect)
		return true
	})
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"exec-credential", "", []string{"exec-credential", "--scope", "graph", "--force-refresh"}},
		{"git-credential get", "protocol=https\nhost=dev.azure.com\n\n", []string{"git-credential", "--force-refresh", "get"}},
		{"get --request", `{"id":"a","scopes":["graph"],"force_refresh":true}` + "\n", []string{"get", "--request", "-"}},
		{"renew", "", []string{"renew"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := cached(t, e)
			res := runStdin(t, e, 60*time.Second, c.stdin, c.args...)
			if res.Code == 0 || !strings.Contains(res.Stdout+res.Stderr, "redirect") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
			}
			p.noLeak(t, res)
			p.nothingAtOtherHosts(t)
			sameCache(t, before, cached(t, e))
		})
	}
}

// r0 is the path of the home tenant's token endpoint.
func r0(*idp) string { return "/" + entrasim.HomeTenantID + "/oauth2/v2.0/token" }

// An openid-configuration naming a token endpoint on plain http or on another host
// is refused before anything is sent there.
func TestMetadataNamingAnotherEndpointIsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		to   func(p *idp) string
	}{
		{"http", func(p *idp) string { return p.plain.url }},
		{"another host", func(p *idp) string { return p.other.url }},
		{"http on the same host", func(p *idp) string { return "http" + strings.TrimPrefix(p.url, "https") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, p := env(t)
			p.set(func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
				if !isOpenIDConfig(r) {
					return false
				}
				status, hdr, doc := p.forward(r, body)
				// Only the token endpoint moves; the issuer stays right, as MSAL checks it.
				doc = []byte(strings.Replace(string(doc), `"token_endpoint":"`+p.url, `"token_endpoint":"`+c.to(p), 1))
				p.write(w, status, hdr, doc)
				return true
			})
			before := cached(t, e)
			res := run(t, e, 60*time.Second, "get", "--scope", "graph")
			p.refused(t, res, 5, "openid-configuration", "token endpoint")
			p.nothingAtOtherHosts(t)
			if n := p.hits(r0(p)); n != 0 {
				t.Fatalf("%d token requests reached the proxy", n)
			}
			sameCache(t, before, cached(t, e))
			// The refused document was not kept: once the server is fixed, gets work.
			p.set(nil)
			if res := run(t, e, 60*time.Second, "get", "--scope", "graph"); res.Code != 0 {
				t.Fatalf("after the server was fixed: exit %d\n%s", res.Code, res.Stderr)
			}
		})
	}
}

// A confidential client's secret (from PCTOKEN_CLIENT_SECRET or the secure store)
// is held to the same rule as the refresh token: a redirect or an endpoint
// elsewhere never receives it.
func TestClientSecretStaysWithTheAuthorityHost(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.UseTestBinaryAsBrowser()
	delete(e.Vars, "PCTOKEN_CLIENT_ID")
	port := freePort(t)
	res := e.RunStdin(entrasim.ClientSecret+"\n", "consent", "--client-id", entrasim.ConfidentialClientID,
		"--client-secret-stdin", "--port-range", port+"-"+port, "--timeout", "30s")
	if res.Code != 0 {
		t.Fatalf("consent: exit %d\n%s", res.Code, res.Stderr)
	}
	p := hostile(t, e)
	for _, c := range []struct {
		name string
		env  string
		h    hook
	}{
		{"stored secret, redirect", "", func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
			if !isToken(r) {
				return false
			}
			http.Redirect(w, r, p.other.url+"/token", http.StatusTemporaryRedirect)
			return true
		}},
		{"secret from the environment, redirect to http", entrasim.ClientSecret, func(p *idp, w http.ResponseWriter, r *http.Request, body []byte) bool {
			if !isToken(r) {
				return false
			}
			http.Redirect(w, r, p.plain.url+"/token", http.StatusPermanentRedirect)
			return true
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.Vars["PCTOKEN_CLIENT_SECRET"] = c.env
			p.set(c.h)
			res := run(t, e, 60*time.Second, "get", "--scope", "graph", "--force-refresh")
			p.refused(t, res, 5, "redirect")
			p.nothingAtOtherHosts(t)
			if !slices.Contains(p.seen(), entrasim.ClientSecret) {
				t.Fatal("the secret was not sent to the authority host: the test proves nothing")
			}
		})
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
