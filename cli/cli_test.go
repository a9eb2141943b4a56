package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/pctoken/pctoken-helper/failure"
)

// parse runs kong over args and returns the root, as Run does before dispatching.
func parse(t *testing.T, args ...string) (*Root, *kong.Context, error) {
	t.Helper()
	var root Root
	p, err := kong.New(&root, kong.Name("pctoken-helper"), kong.Exit(func(int) { t.Fatal("kong exited") }))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := p.Parse(args)
	return &root, kctx, err
}

func TestArgvToInput(t *testing.T) {
	for _, k := range []string{"PCTOKEN_PROFILE", "PCTOKEN_TENANT", "PCTOKEN_CLIENT_ID", "PCTOKEN_VERBOSE"} {
		t.Setenv(k, "x") // restored after the test
		os.Unsetenv(k)
	}
	root, kctx, err := parse(t, "get", "--profile", "contoso", "--scope", "graph", "-s", "arm", "--tenant", "fabrikam.onmicrosoft.com", "-o", "token", "--min-validity", "10m", "--force-refresh")
	if err != nil {
		t.Fatal(err)
	}
	if kctx.Command() != "get" || root.Profile != "contoso" || root.Tenant != "fabrikam.onmicrosoft.com" {
		t.Fatalf("globals: command %q, %+v", kctx.Command(), root.Globals)
	}
	g := root.Get
	if len(g.Scope) != 2 || g.Scope[0] != "graph" || g.Output != "token" || g.MinValidity != 10*time.Minute || !g.ForceRefresh || g.Timeout != 30*time.Second {
		t.Fatalf("get input: %+v", g)
	}

	root, _, err = parse(t, "consent", "--client-id", "app", "--flow", "device-code", "--port-range", "9000-9010", "--no-browser")
	if err != nil {
		t.Fatal(err)
	}
	c := root.Consent
	if root.ClientID != "app" || c.Flow != "device-code" || c.PortRange.First != 9000 || c.PortRange.Last != 9010 || !c.NoBrowser || c.Timeout != 5*time.Minute {
		t.Fatalf("consent input: %+v / %+v", root.Globals, c)
	}

	root, _, err = parse(t, "git-credential", "get", "--host", "example.com", "--scope", "azure-devops")
	if err != nil || root.GitCredential.Verb != "get" || root.GitCredential.Host[0] != "example.com" {
		t.Fatalf("git-credential input: %+v, %v", root.GitCredential, err)
	}
	root, _, _ = parse(t, "git-credential", "get")
	if h := root.GitCredential.Host; len(h) != 2 || h[0] != "dev.azure.com" || h[1] != "*.visualstudio.com" {
		t.Fatalf("default hosts %v", h)
	}
}

func TestEnvironmentFillsFlags(t *testing.T) {
	t.Setenv("PCTOKEN_PROFILE", "fromenv")
	t.Setenv("PCTOKEN_VERBOSE", "1")
	root, _, err := parse(t, "status")
	if err != nil || root.Profile != "fromenv" || !root.Verbose {
		t.Fatalf("env: %+v %v", root.Globals, err)
	}
	root, _, _ = parse(t, "status", "--profile", "fromflag")
	if root.Profile != "fromflag" {
		t.Fatalf("flag must win over env, got %q", root.Profile)
	}
}

func testEnv(stdin string) (Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	env := OS()
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(stdin), &out, &errb
	env.TTY = func() (io.ReadWriteCloser, error) { return nil, io.EOF }
	return env, &out, &errb
}

func TestBadInputExitsTwoWithAHint(t *testing.T) {
	tests := [][]string{
		{"get", "--bogus"},
		{"get", "--output", "yaml"},
		{"consent", "--flow", "magic"},
		{"consent", "--port-range", "9-1"},
		{"get", "--min-validity", "soon"},
		{"nosuchcommand"},
		{"get", "--profile", "../escape", "--config-dir", "/nonexistent-dir"},
	}
	for _, args := range tests {
		env, out, errb := testEnv("")
		code := Run(context.Background(), args, env)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb)
		}
		if !strings.Contains(errb.String(), "error:") {
			t.Errorf("%v: stderr %q has no error line", args, errb)
		}
		if args[0] == "get" && strings.Contains(out.String(), "access_token") {
			t.Errorf("%v: stdout %q", args, out)
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"get", "--help"}, {"git-credential", "--help"}} {
		env, out, _ := testEnv("")
		if code := Run(context.Background(), args, env); code != 0 || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
}

func TestExecInfoUnparseableExitsTwo(t *testing.T) {
	t.Setenv("KUBERNETES_EXEC_INFO", `{"apiVersion":`)
	env, out, errb := testEnv("")
	if code := Run(context.Background(), []string{"exec-credential", "--config-dir", t.TempDir(), "--cache-dir", t.TempDir()}, env); code != 2 {
		t.Fatalf("exit %d, stderr %q", code, errb)
	}
	if out.Len() != 0 {
		t.Fatalf("stdout %q", out)
	}
}

func TestGetWithoutConsentExitsThreeWithTheConsentCommand(t *testing.T) {
	env, out, errb := testEnv("")
	code := Run(context.Background(), []string{"get", "--profile", "contoso", "--config-dir", t.TempDir(), "--cache-dir", t.TempDir()}, env)
	if code != 3 {
		t.Fatalf("exit %d, stderr %q", code, errb)
	}
	if !strings.Contains(errb.String(), "hint: pctoken-helper consent --profile contoso") {
		t.Fatalf("stderr %q lacks the remedy", errb)
	}
	if !strings.Contains(out.String(), `"code":"consent_required"`) {
		t.Fatalf("json error on stdout: %q", out)
	}
}

func TestRemedyForATenantWithoutAccess(t *testing.T) {
	noAccess := &failure.Error{Kind: failure.ConsentNeeded, AADSTS: "50020", Message: "no access"}
	if got := remedyFor(noAccess, "contoso"); !strings.Contains(got, "--tenant") || strings.Contains(got, "consent --profile") {
		t.Fatalf("remedy for AADSTS50020 = %q: consenting again does not give access to a tenant", got)
	}
	public := &failure.Error{Kind: failure.Configuration, AADSTS: "700025", Message: "public"}
	if got := remedyFor(public, "contoso"); !strings.Contains(got, "PCTOKEN_CLIENT_SECRET") {
		t.Fatalf("remedy for AADSTS700025 = %q", got)
	}
	expired := &failure.Error{Kind: failure.ConsentNeeded, AADSTS: "700082", Message: "expired"}
	if got := remedyFor(expired, "contoso"); got != "pctoken-helper consent --profile contoso" {
		t.Fatalf("remedy for AADSTS700082 = %q", got)
	}
}

func TestOneResourcePerToken(t *testing.T) {
	for _, ok := range [][]string{
		{"https://graph.microsoft.com/.default"},
		{"https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read", "User.Read", "openid"},
		{"499b84ac-1321-427f-aa17-267ca6975798/.default", "offline_access"},
	} {
		if err := oneResource(ok); err != nil {
			t.Errorf("oneResource(%q) = %v", ok, err)
		}
	}
	two := []string{"https://management.azure.com/user_impersonation", "https://graph.microsoft.com/.default"}
	if err := oneResource(two); failure.KindOf(err) != failure.Usage {
		t.Errorf("oneResource(%q) = %v, want a usage error", two, err)
	}
	got := firstResource([]string{"openid", "https://api.partnercenter.microsoft.com/user_impersonation", "https://graph.microsoft.com/.default", "https://API.partnercenter.microsoft.com/x"})
	want := []string{"openid", "https://api.partnercenter.microsoft.com/user_impersonation", "https://API.partnercenter.microsoft.com/x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("firstResource = %q, want %q", got, want)
	}
}

func TestRemedyForAnUntrustedIdentityProvider(t *testing.T) {
	err := &failure.Error{Kind: failure.Configuration, Message: "cannot verify", Err: fmt.Errorf("post: %w", x509.UnknownAuthorityError{})}
	if got := remedyFor(err, "contoso"); !strings.Contains(got, "SSL_CERT_FILE") {
		t.Fatalf("remedy for an unknown CA = %q", got)
	}
}

func TestEmptyVerboseVariableIsUnset(t *testing.T) {
	t.Setenv("PCTOKEN_VERBOSE", "")
	env, out, errb := testEnv("")
	if code := Run(context.Background(), []string{"version"}, env); code != 0 || !strings.Contains(out.String(), "pctoken-helper") {
		t.Fatalf("exit %d, stderr %q", code, errb)
	}
}
