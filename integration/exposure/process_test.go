package exposure

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// TestBrowserGetsNoSecrets: the browser opener (and the browser it starts, which may
// live for hours) runs without PCTOKEN_CLIENT_SECRET, PCTOKEN_FILE_PASSPHRASE,
// PCTOKEN_REFRESH_TOKEN, or any variable holding the value of one; it still gets
// what it needs (here the trust store and the harness's own variables) and signs in.
func TestBrowserGetsNoSecrets(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.UseTestBinaryAsBrowser()
	dump := filepath.Join(t.TempDir(), "browser-env")
	script := filepath.Join(t.TempDir(), "browser.sh")
	mustWrite(t, script, "#!/bin/sh\nenv > '"+dump+"'\nexec '"+os.Args[0]+"' \"$@\"\n", 0o700)
	e.Vars["BROWSER"] = script
	e.Vars["PCTOKEN_CLIENT_SECRET"] = entrasim.ClientSecret
	e.Vars["PCTOKEN_REFRESH_TOKEN"] = "0.AAAA-a-refresh-token-given-to-ci-mode-0123456789"
	e.Vars["MY_COPY_OF_THE_PASSPHRASE"] = harness.Passphrase
	res := e.Run("consent", "--client-id", entrasim.ConfidentialClientID, "--timeout", "30s")
	if res.Code != 0 {
		t.Fatalf("consent through the script browser: exit %d\n%s", res.Code, res.Stderr)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("the browser never ran: %v", err)
	}
	env := string(b)
	for _, bad := range []string{"PCTOKEN_CLIENT_SECRET", "PCTOKEN_FILE_PASSPHRASE", "PCTOKEN_REFRESH_TOKEN", "MY_COPY_OF_THE_PASSPHRASE",
		entrasim.ClientSecret, harness.Passphrase, e.Vars["PCTOKEN_REFRESH_TOKEN"]} {
		if strings.Contains(env, bad) {
			t.Errorf("the browser's environment holds %q", bad)
		}
	}
	for _, want := range []string{"SSL_CERT_FILE=", "HARNESS_BROWSER=1", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("the browser's environment lacks %s", want)
		}
	}
}

// TestNoCoreDumps: a command of the full path (here consent, waiting for the
// redirect, with the passphrase and the client secret in its environment) runs with
// no core file size, so a crash leaves no copy of its memory on disk.
func TestNoCoreDumps(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.Command(ctx, "consent", "--no-browser", "--timeout", "30s")
	cmd.Dir = t.TempDir()
	cmd.Env = append(cmd.Env, "PCTOKEN_CLIENT_SECRET="+entrasim.ClientSecret)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "Waiting for the redirect") {
	}
	limits, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Max core file size\s+(\S+)\s+(\S+)`).FindStringSubmatch(string(limits))
	if m == nil || m[1] != "0" || m[2] != "0" {
		t.Fatalf("core file size of the waiting helper: %q, want 0 0\n%s", m, limits)
	}
}

// TestScopeMustBeText: a scope that is not valid UTF-8, or holds a control
// character, is refused as the same bytes in a tenant are: exit 2, before any
// request.
func TestScopeMustBeText(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	before := e.Sim.Stats().Requests["token"]
	for _, scope := range []string{"https://graph.microsoft.com/\xff.default", "api://x/\x1b[2J.default"} {
		for _, args := range [][]string{{"get", "--scope", scope}, {"get", "--force-refresh", "--scope", scope}} {
			res := e.Run(args...)
			if res.Code != 2 || !strings.Contains(res.Stderr, "invalid scope") || strings.Contains(res.Stderr, "\x1b") {
				t.Fatalf("%q: exit %d, want 2 naming the scope (cleaned)\n%q\n%s", args, res.Code, res.Stderr, res.Stdout)
			}
		}
		res := e.RunStdin(`{"id":1,"scopes":["`+strings.ReplaceAll(scope, "\x1b", `\u001b`)+`"]}`+"\n", "get", "--request", "-")
		if res.Code != 2 || !strings.Contains(res.Stdout, `"code":"bad_input"`) || !strings.Contains(res.Stdout, "scope") {
			t.Fatalf("--request with scope %q: exit %d\n%s", scope, res.Code, res.Stdout)
		}
	}
	if n := e.Sim.Stats().Requests["token"] - before; n != 0 {
		t.Fatalf("%d token requests were sent for bad scopes", n)
	}
}

// TestGitHostRules: git's url= is honoured as git honours it (it clears what came
// before and sets protocol, host and path; later keys override), so a url= naming
// another host after host=dev.azure.com gets no token; and "*.visualstudio.com"
// matches a subdomain, never ".visualstudio.com" or "visualstudio.com" itself.
func TestGitHostRules(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	for _, c := range []struct {
		req    string
		answer bool
	}{
		{"protocol=https\nhost=dev.azure.com\n\n", true},
		{"protocol=https\nhost=dev.azure.com\nurl=https://evil.example/org/repo\n\n", false},
		{"protocol=https\nhost=dev.azure.com\nurl=http://dev.azure.com/org/repo\n\n", false},
		{"protocol=https\nhost=evil.example\nurl=https://dev.azure.com/org/repo\n\n", true},
		{"url=https://evil.example/\nhost=dev.azure.com\n\n", true},
		{"protocol=https\nhost=org.visualstudio.com\n\n", true},
		{"protocol=https\nhost=.visualstudio.com\n\n", false},
		{"protocol=https\nhost=visualstudio.com\n\n", false},
		{"url=https://.visualstudio.com/x\n\n", false},
	} {
		res := e.RunStdin(c.req, "git-credential", "--scope", "azure-devops", "get")
		if res.Code != 0 {
			t.Fatalf("%q: exit %d\n%s", c.req, res.Code, res.Stderr)
		}
		if got := strings.Contains(res.Stdout, "password="); got != c.answer {
			t.Errorf("%q: answered %v, want %v\n%s", c.req, got, c.answer, res.Stdout)
		}
	}
}
