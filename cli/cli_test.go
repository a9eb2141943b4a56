package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/securestore"
	"github.com/pctoken/pctoken-helper/settings"
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

// TestArgvToInput checks, by name, the input kong hands each command for a command line.
func TestArgvToInput(t *testing.T) {
	for _, k := range []string{"PCTOKEN_PROFILE", "PCTOKEN_TENANT", "PCTOKEN_CLIENT_ID", "PCTOKEN_VERBOSE"} {
		t.Setenv(k, "x") // restored after the test
		os.Unsetenv(k)
	}
	tests := map[string]struct {
		argv []string
		cmd  string
		ok   func(r *Root) bool
	}{
		"get with every token flag": {
			argv: []string{"get", "--profile", "contoso", "--scope", "graph", "-s", "arm", "--tenant", "fabrikam.onmicrosoft.com", "-o", "token", "--min-validity", "10m", "--force-refresh"},
			cmd:  "get",
			ok: func(r *Root) bool {
				g := r.Get
				return r.Profile == "contoso" && r.Tenant == "fabrikam.onmicrosoft.com" && slices.Equal(g.Scope, []string{"graph", "arm"}) &&
					g.Output == "token" && g.MinValidity == 10*time.Minute && g.ForceRefresh && g.Timeout == 30*time.Second
			},
		},
		"get defaults": {
			argv: []string{"get"},
			cmd:  "get",
			ok: func(r *Root) bool {
				g := r.Get
				return g.Output == "json" && g.MinValidity == 5*time.Minute && g.Timeout == 30*time.Second && g.Parallel == 16 && !r.Verbose
			},
		},
		"consent device code": {
			argv: []string{"consent", "--client-id", "app", "--flow", "device-code", "--port-range", "9000-9010", "--no-browser"},
			cmd:  "consent",
			ok: func(r *Root) bool {
				c := r.Consent
				return r.ClientID == "app" && c.Flow == "device-code" && c.PortRange.First == 9000 && c.PortRange.Last == 9010 && c.NoBrowser && c.Timeout == 5*time.Minute
			},
		},
		"git-credential with a host": {
			argv: []string{"git-credential", "get", "--host", "example.com", "--scope", "azure-devops"},
			cmd:  "git-credential <verb>",
			ok: func(r *Root) bool {
				return r.GitCredential.Verb == "get" && slices.Equal(r.GitCredential.Host, []string{"example.com"})
			},
		},
		"git-credential default hosts": {
			argv: []string{"git-credential", "get"},
			cmd:  "git-credential <verb>",
			ok: func(r *Root) bool {
				return slices.Equal(r.GitCredential.Host, []string{"dev.azure.com", "*.visualstudio.com"}) && r.GitCredential.Username == "pctoken"
			},
		},
		"exec-credential verbose": {
			argv: []string{"exec-credential", "-v", "--scope", "aks"},
			cmd:  "exec-credential",
			ok:   func(r *Root) bool { return r.Verbose && slices.Equal(r.ExecCredential.Scope, []string{"aks"}) },
		},
		"renew all": {
			argv: []string{"renew", "--all", "--timeout", "1m"},
			cmd:  "renew",
			ok:   func(r *Root) bool { return r.Renew.All && r.Renew.Timeout == time.Minute },
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			root, kctx, err := parse(t, tt.argv...)
			if err != nil {
				t.Fatal(err)
			}
			if kctx.Command() != tt.cmd || !tt.ok(root) {
				t.Fatalf("command %q: globals %+v, input %+v", kctx.Command(), root.Globals, root)
			}
		})
	}
}

func TestEnvironmentFillsFlags(t *testing.T) {
	t.Setenv("PCTOKEN_PROFILE", "fromenv")
	root, _, err := parse(t, "status")
	if err != nil || root.Profile != "fromenv" {
		t.Fatalf("env: %+v %v", root.Globals, err)
	}
	root, _, _ = parse(t, "status", "--profile", "fromflag")
	if root.Profile != "fromflag" {
		t.Fatalf("flag must win over env, got %q", root.Profile)
	}
}

// PCTOKEN_VERBOSE is read by settings.Verbose (the early path's rule too): a value
// that is no bool is bad input, as kong said of it.
func TestVerboseVariable(t *testing.T) {
	t.Setenv("PCTOKEN_VERBOSE", "maybe")
	env, _, errb := testEnv("")
	if code := Run(context.Background(), []string{"version"}, env); code != exitUsage || !strings.Contains(errb.String(), "PCTOKEN_VERBOSE") {
		t.Fatalf("PCTOKEN_VERBOSE=maybe: exit %d, stderr %q", code, errb)
	}
}

// A kubectl token without a scope would be Partner Center's, which no API server takes.
func TestExecCredentialWithoutScopeExitsTwo(t *testing.T) {
	t.Setenv("KUBERNETES_EXEC_INFO", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`)
	env, out, errb := testEnv("")
	if code := Run(context.Background(), []string{"exec-credential", "--config-dir", t.TempDir(), "--cache-dir", t.TempDir()}, env); code != exitUsage || out.Len() != 0 || !strings.Contains(errb.String(), "--scope") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errb)
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
		if err := settings.OneResource(ok); err != nil {
			t.Errorf("settings.OneResource(%q) = %v", ok, err)
		}
	}
	two := []string{"https://management.azure.com/user_impersonation", "https://graph.microsoft.com/.default"}
	if err := settings.OneResource(two); failure.KindOf(err) != failure.Usage {
		t.Errorf("settings.OneResource(%q) = %v, want a usage error", two, err)
	}
	got := settings.FirstResource([]string{"openid", "https://api.partnercenter.microsoft.com/user_impersonation", "https://graph.microsoft.com/.default", "https://API.partnercenter.microsoft.com/x"})
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

func TestVersionNamesTheBuild(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-V"}} {
		env, out, _ := testEnv("")
		if code := Run(context.Background(), args, env); code != 0 || !strings.HasPrefix(out.String(), "pctoken-helper ") || !strings.Contains(out.String(), "commit ") || !strings.Contains(out.String(), runtime.Version()) {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

// The stores settings accepts are the ones securestore opens, and the Key Vault store.
func TestStoresMatchSecurestore(t *testing.T) {
	for _, b := range securestore.Backends {
		if !slices.Contains(settings.Stores, b) {
			t.Errorf("securestore opens %q, which settings refuses", b)
		}
	}
}

// No arguments, and "help COMMAND", show help (exit 0), as git and kubectl do.
func TestHelpWithoutFlags(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"help", "get"}} {
		env, out, errb := testEnv("")
		if code := Run(context.Background(), args, env); code != 0 || !strings.Contains(out.String(), "Usage: pctoken-helper") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errb)
		}
	}
}
