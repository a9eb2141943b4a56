package consumers

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/testca"
)

// azureDevOps is the Azure DevOps resource: the audience of git tokens.
const azureDevOps = "499b84ac-1321-427f-aa17-267ca6975798"

// repoPath is the repository of the docs' clone example.
const repoPath = "/contoso/fabrikam-app/_git/fabrikam-app"

// gitServer is a local Azure DevOps: git's smart HTTP protocol served by the real
// `git http-backend` behind TLS, answering only requests whose Basic password (or
// Bearer token) is a valid simulator token for Azure DevOps in the home tenant.
type gitServer struct {
	api     apiServer
	backend http.Handler
	// base is the URL clients use: https://dev.azure.com when the server could take
	// port 443 on a loopback address, https://dev.azure.com:PORT otherwise.
	base    string
	resolve string // http.curloptResolve entry pointing dev.azure.com at the server
	caFile  string
	port    string // "" when on 443

	mu       sync.Mutex
	rejected map[string]bool // tokens to refuse although valid (a revoked session)
	accepted []string
	refused  []string
	foreign  []string // hosts other than dev.azure.com that sent a password
}

func newGitServer(t *testing.T, sim *entrasim.Sim) *gitServer {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not on PATH")
	}
	root := t.TempDir()
	repo := filepath.Join(root, filepath.FromSlash(repoPath))
	seed := filepath.Join(t.TempDir(), "seed")
	for _, args := range [][]string{
		{"init", "-q", "--bare", repo},
		{"init", "-q", "-b", "main", seed},
		{"-C", seed, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "--allow-empty", "-m", "first"},
		{"-C", seed, "push", "-q", repo, "main"},
		{"-C", repo, "symbolic-ref", "HEAD", "refs/heads/main"},
	} {
		cmd := exec.Command(gitPath, args...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	g := &gitServer{
		api:      apiServer{sim: sim, audience: azureDevOps, tenant: entrasim.HomeTenantID},
		rejected: map[string]bool{},
		backend: &cgi.Handler{
			Path: gitPath,
			Args: []string{"http-backend"},
			Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
		},
	}
	ca := testca.New(t)
	g.caFile = ca.File
	ln, ip := listen443(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	g.base = "https://dev.azure.com"
	if port != "443" {
		g.port = port
		g.base += ":" + port
	}
	g.resolve = "dev.azure.com:" + port + ":" + ip
	serveTLS(t, ln, ca.ServerCert(t, "dev.azure.com", "git.example.org", ip), g)
	return g
}

// listen443 listens on port 443 of a random loopback address (the docs' URLs have no
// port), or on any port of 127.0.0.1 where 443 is not allowed.
func listen443(t *testing.T) (net.Listener, string) {
	var b [3]byte
	rand.Read(b[:])
	ip := fmt.Sprintf("127.%d.%d.%d", b[0], b[1], b[2]|1)
	if ln, err := net.Listen("tcp", ip+":443"); err == nil {
		return ln, ip
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Log("cannot listen on port 443: the git server uses " + ln.Addr().String())
	return ln, "127.0.0.1"
}

func (g *gitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := bearer(r)
	if _, pw, ok := r.BasicAuth(); ok {
		tok = pw
	}
	host, _, _ := strings.Cut(r.Host, ":")
	g.mu.Lock()
	if host != "dev.azure.com" && tok != "" {
		g.foreign = append(g.foreign, r.Host)
	}
	var err error
	switch {
	case tok == "":
		err = fmt.Errorf("no credentials")
	case g.rejected[tok]:
		err = fmt.Errorf("token revoked")
	default:
		_, err = g.api.check(tok)
	}
	if err != nil {
		if tok != "" {
			g.refused = append(g.refused, err.Error())
		}
		g.mu.Unlock()
		// As Azure DevOps answers.
		w.Header().Add("WWW-Authenticate", `Bearer authorization_uri=https://login.microsoftonline.com/`+entrasim.HomeTenantID)
		w.Header().Add("WWW-Authenticate", `Basic realm="https://dev.azure.com/"`)
		http.Error(w, "TF400813: The user is not authorized to access this resource.", http.StatusUnauthorized)
		return
	}
	g.accepted = append(g.accepted, tok)
	g.mu.Unlock()
	g.backend.ServeHTTP(w, r)
}

func (g *gitServer) reject(tok string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rejected[tok] = true
}

func (g *gitServer) state() (accepted, refused, foreign []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.accepted...), append([]string(nil), g.refused...), append([]string(nil), g.foreign...)
}

// git runs the real git in e's environment with a fresh HOME: no system config,
// no prompts, the server's CA trusted and dev.azure.com resolved to the server.
type gitRunner struct {
	e    *env
	g    *gitServer
	home string
}

func newGitRunner(e *env, g *gitServer) *gitRunner {
	home := filepath.Join(e.Dir, "githome")
	os.MkdirAll(home, 0o700)
	return &gitRunner{e: e, g: g, home: home}
}

func (r *gitRunner) environ() []string {
	return []string{
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"GIT_SSL_CAINFO=" + r.g.caFile,
		// Command-line config from the environment: where dev.azure.com is.
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.curloptResolve",
		"GIT_CONFIG_VALUE_0=" + r.g.resolve,
		// git's HOME is the user's: the harness keeps the helper's folders in XDG_*.
		"HOME=" + r.home,
	}
}

// run runs a command line (through sh, as a user types it) in dir.
func (r *gitRunner) sh(t *testing.T, dir, script string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := r.e.command(ctx, r.environ(), "/bin/sh", "-c", script)
	cmd.Dir = dir
	return run(t, cmd, "")
}

func (r *gitRunner) git(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := r.e.command(ctx, r.environ(), "git", args...)
	cmd.Dir = r.home
	return run(t, cmd, stdin)
}

// docsURL adapts the docs' text to a server that could not take port 443.
func (r *gitRunner) docsText(text string) string {
	if r.g.port == "" {
		return text
	}
	text = strings.ReplaceAll(text, "https://dev.azure.com", r.g.base)
	return strings.ReplaceAll(text, "git-credential ", "git-credential --host dev.azure.com:"+r.g.port+" ")
}

// TestGitCloneWithDocumentedConfig runs the git config commands of docs/git.md over a
// global config that already has another helper, then clones from a server that
// demands an Entra ID token.
func TestGitCloneWithDocumentedConfig(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	g := newGitServer(t, e.Sim)
	r := newGitRunner(e, g)
	// Another helper, configured earlier, that must not be asked.
	const other = "other-helper-secret"
	if _, stderr, code := r.git(t, "", "config", "--global", "credential.helper", "!f() { echo username=x; echo password="+other+"; }; f"); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := r.sh(t, r.home, r.docsText(recipe(t, "git.md", "git-config"))); code != 0 {
		t.Fatalf("the git config recipe: exit %d\n%s", code, stderr)
	}
	// Run twice: the recipe is safe to repeat.
	if _, stderr, code := r.sh(t, r.home, r.docsText(recipe(t, "git.md", "git-config"))); code != 0 {
		t.Fatalf("the git config recipe, again: exit %d\n%s", code, stderr)
	}
	work := t.TempDir()
	_, stderr, code := r.sh(t, work, r.docsText("git clone -q https://dev.azure.com/contoso/fabrikam-app/_git/fabrikam-app"))
	if code != 0 {
		t.Fatalf("git clone: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(work, "fabrikam-app", ".git")); err != nil {
		t.Fatalf("no clone: %v", err)
	}
	accepted, refused, _ := g.state()
	if len(accepted) == 0 {
		t.Fatal("the server accepted nothing")
	}
	for _, why := range refused {
		if strings.Contains(why, other) {
			t.Fatal("the other helper's password reached the server")
		}
	}
	c, _ := e.Sim.ValidateAccessToken(accepted[0])
	if c.UPN != entrasim.UserUPN {
		t.Errorf("token of %q", c.UPN)
	}

	// A second command is answered from the helper's cache.
	before := e.Sim.Stats().Requests["token"]
	if _, stderr, code := r.sh(t, filepath.Join(work, "fabrikam-app"), "git fetch -q"); code != 0 {
		t.Fatalf("git fetch: exit %d\n%s", code, stderr)
	}
	if after := e.Sim.Stats().Requests["token"]; after != before {
		t.Errorf("git fetch made %d token requests, want a cache hit", after-before)
	}
}

// TestGitConfigFileRecipe uses the ~/.gitconfig form of docs/git.md and the one-off
// `git -c` clone of its CI section.
func TestGitConfigFileRecipe(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	g := newGitServer(t, e.Sim)
	r := newGitRunner(e, g)
	cfg := r.docsText(recipe(t, "git.md", "gitconfig-file"))
	if err := os.WriteFile(filepath.Join(r.home, ".gitconfig"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := r.git(t, "", "ls-remote", g.base+repoPath)
	if code != 0 || !strings.Contains(out, "refs/heads/main") {
		t.Fatalf("git ls-remote: exit %d\n%s\n%s", code, out, stderr)
	}

	// The one-off form, with no config file at all: it names its profile (there is no
	// default profile here to fall back on).
	os.Remove(filepath.Join(r.home, ".gitconfig"))
	work := t.TempDir()
	if _, stderr, code := r.sh(t, work, r.docsText(recipe(t, "git.md", "git-one-off"))); code != 0 {
		t.Fatalf("the one-off clone: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(work, "fabrikam-app", ".git")); err != nil {
		t.Fatalf("no clone: %v", err)
	}
}

// TestGitEraseDropsRejectedToken: after the server refuses a cached token, git calls
// erase with it; the helper drops it, and the next command gets a new token.
func TestGitEraseDropsRejectedToken(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	g := newGitServer(t, e.Sim)
	r := newGitRunner(e, g)
	if _, stderr, code := r.sh(t, r.home, r.docsText(recipe(t, "git.md", "git-config"))); code != 0 {
		t.Fatalf("recipe: exit %d\n%s", code, stderr)
	}
	url := g.base + repoPath
	if _, stderr, code := r.git(t, "", "ls-remote", url); code != 0 {
		t.Fatalf("git ls-remote: exit %d\n%s", code, stderr)
	}
	accepted, _, _ := g.state()
	first := accepted[len(accepted)-1]
	g.reject(first)

	_, stderr, code := r.git(t, "", "ls-remote", url)
	if code == 0 {
		t.Fatal("git ls-remote succeeded with a rejected token")
	}
	if !strings.Contains(stderr, "Authentication failed") {
		t.Errorf("git said: %s", stderr)
	}
	if _, stderr, code := r.git(t, "", "ls-remote", url); code != 0 {
		t.Fatalf("git ls-remote after erase: exit %d\n%s", code, stderr)
	}
	accepted, _, _ = g.state()
	if last := accepted[len(accepted)-1]; last == first {
		t.Fatal("the helper handed out the rejected token again")
	}
}

// TestGitHostAllowlist configures the helper for every URL; git asks it for a host
// that is not allowed, and no token may reach that host.
func TestGitHostAllowlist(t *testing.T) {
	e := newEnv(t)
	e.Consent()
	g := newGitServer(t, e.Sim)
	r := newGitRunner(e, g)
	if _, stderr, code := r.git(t, "", "config", "--global", "credential.helper", "!pctoken-helper git-credential --scope azure-devops"); code != 0 {
		t.Fatal(stderr)
	}
	e.Sim.ResetStats()
	foreignURL := strings.Replace(g.base, "dev.azure.com", "git.example.org", 1) + repoPath
	resolve := "GIT_CONFIG_VALUE_0=" + strings.Replace(g.resolve, "dev.azure.com", "git.example.org", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.command(ctx, append(r.environ(), resolve), "git", "ls-remote", foreignURL)
	_, stderr, code := run(t, cmd, "")
	if code == 0 {
		t.Fatal("git reached the foreign host's repository")
	}
	if _, _, foreign := g.state(); len(foreign) != 0 {
		t.Fatalf("a password reached %v", foreign)
	}
	if n := e.Sim.Stats().Requests["token"]; n != 0 {
		t.Errorf("the helper asked for %d tokens for a host it may not serve", n)
	}
	if !strings.Contains(stderr, "terminal prompts disabled") {
		t.Errorf("git said: %s", stderr)
	}

	// git credential fill for the allowed host gets the token.
	out, stderr, code := r.git(t, "protocol=https\nhost=dev.azure.com\npath=contoso/x\n\n", "credential", "fill")
	if code != 0 {
		t.Fatalf("git credential fill: exit %d\n%s", code, stderr)
	}
	fields := gitFields(out)
	if _, err := g.api.check(fields["password"]); err != nil || fields["username"] != "pctoken" {
		t.Fatalf("git credential fill answered %q: %v", redact(out), err)
	}
}

// redact hides the secrets of git answer lines in test failures.
func redact(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if k, _, ok := strings.Cut(l, "="); ok && (k == "password" || k == "credential") {
			lines[i] = k + "=<redacted>"
		}
	}
	return strings.Join(lines, "\n")
}

// gitFields parses key=value lines.
func gitFields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestGitCredentialProtocol speaks the protocol as newer gits do, which the git on
// this machine cannot show: password_expiry_utc (git 2.40+) and the authtype
// capability (git 2.46+), plus the verbs git may send.
func TestGitCredentialProtocol(t *testing.T) {
	e := newEnv(t)
	e.Consent()
	helper := []string{"git-credential", "--scope", azureDevOps + "/.default"}
	verb := func(v string) []string { return append(append([]string(nil), helper...), v) }

	res := e.RunStdin("protocol=https\nhost=dev.azure.com\npath=contoso/x\n\n", verb("get")...)
	f := gitFields(res.Stdout)
	c, err := e.Sim.ValidateAccessToken(f["password"])
	if res.Code != 0 || err != nil || c.Audience != azureDevOps {
		t.Fatalf("get: exit %d, %v\n%s\n%s", res.Code, err, redact(res.Stdout), res.Stderr)
	}
	if f["password_expiry_utc"] != fmt.Sprint(c.ExpiresAt.Unix()) {
		t.Errorf("password_expiry_utc %q, token expires at %d", f["password_expiry_utc"], c.ExpiresAt.Unix())
	}
	if _, ok := f["authtype"]; ok {
		t.Errorf("authtype without the capability: %q", redact(res.Stdout))
	}

	// git 2.46 offers the authtype capability, with wwwauth[] from the server.
	res = e.RunStdin("capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=contoso.visualstudio.com\n"+
		"wwwauth[]=Bearer authorization_uri=https://login.microsoftonline.com/x\nwwwauth[]=Basic realm=\"https://dev.azure.com/\"\n\n", verb("get")...)
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	f = gitFields(res.Stdout)
	if res.Code != 0 || lines[0] != "capability[]=authtype" || f["authtype"] != "Bearer" || f["credential"] != f["password"] {
		t.Fatalf("get with capability[]=authtype: exit %d\n%s", res.Code, redact(res.Stdout))
	}
	if _, err := e.Sim.ValidateAccessToken(f["credential"]); err != nil {
		t.Fatal(err)
	}
	cached := f["password"]

	// Hosts not allowed, clear-text http, and an empty host: nothing, exit 0.
	for _, in := range []string{
		"protocol=https\nhost=github.com\n\n",
		"protocol=https\nhost=dev.azure.com.evil.example\n\n",
		"protocol=https\nhost=evil.example\npath=dev.azure.com\n\n",
		"protocol=http\nhost=dev.azure.com\n\n",
		"protocol=https\nhost=dev.azure.com:8443\n\n",
		"protocol=https\n\n",
	} {
		if res := e.RunStdin(in, verb("get")...); res.Code != 0 || res.Stdout != "" {
			t.Errorf("get %q: exit %d, stdout %q", in, res.Code, redact(res.Stdout))
		}
	}
	// --host adds hosts, port included.
	res = e.RunStdin("protocol=https\nhost=git.contoso.example:8443\n\n", append(helper, "--host", "git.contoso.example:*", "get")...)
	if res.Code != 0 || gitFields(res.Stdout)["password"] == "" {
		t.Errorf("get with --host: exit %d, %q", res.Code, redact(res.Stdout))
	}

	// store and unknown verbs: nothing, exit 0.
	for _, v := range []string{"store", "capability", "frobnicate"} {
		if res := e.RunStdin("protocol=https\nhost=dev.azure.com\nusername=pctoken\npassword="+cached+"\n\n", verb(v)...); res.Code != 0 || res.Stdout != "" {
			t.Errorf("%s: exit %d, stdout %q", v, res.Code, res.Stdout)
		}
	}

	// erase of another password keeps the cached token; erase of the token drops it.
	getCached := func() bool {
		res := e.RunStdin("protocol=https\nhost=dev.azure.com\n\n", verb("get")...)
		return gitFields(res.Stdout)["password"] == cached
	}
	e.RunStdin("protocol=https\nhost=dev.azure.com\nusername=pctoken\npassword=something-else\n\n", verb("erase")...)
	e.RunStdin("protocol=https\nhost=github.com\nusername=pctoken\npassword="+cached+"\n\n", verb("erase")...)
	if !getCached() {
		t.Fatal("erase of another password, or for another host, dropped the cached token")
	}
	if res := e.RunStdin("protocol=https\nhost=dev.azure.com\nusername=pctoken\npassword="+cached+"\n\n", verb("erase")...); res.Code != 0 || res.Stdout != "" {
		t.Fatalf("erase: exit %d, %q", res.Code, res.Stdout)
	}
	if getCached() {
		t.Fatal("erase did not drop the cached token")
	}

	// git 2.46+, after a Bearer answer was rejected, erases with every field it holds.
	res = e.RunStdin("capability[]=authtype\nprotocol=https\nhost=dev.azure.com\n\n", verb("get")...)
	cached = gitFields(res.Stdout)["credential"]
	e.RunStdin("capability[]=authtype\nauthtype=Bearer\ncredential="+cached+"\nprotocol=https\nhost=dev.azure.com\nusername=pctoken\npassword="+cached+"\nwwwauth[]=Bearer error=\"invalid_token\"\n\n", verb("erase")...)
	if getCached() {
		t.Fatal("erase in git 2.46's form did not drop the cached token")
	}
}
