package hit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/cli"
	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/settings"
)

// kongFlags lists the flags kong reads into the structs of typs (anonymous fields
// included), by long name.
func kongFlags(t *testing.T, typs ...reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for _, typ := range typs {
		for i := range typ.NumField() {
			fld := typ.Field(i)
			if fld.Anonymous {
				for k, v := range kongFlags(t, fld.Type) {
					out[k] = v
				}
				continue
			}
			if fld.Tag.Get("cmd") != "" || fld.Tag.Get("arg") != "" {
				continue
			}
			name := fld.Tag.Get("name")
			if name == "" {
				if strings.IndexFunc(fld.Name[1:], unicode.IsUpper) >= 0 {
					t.Fatalf("%s.%s: kong would hyphenate its name; give it a name tag or teach this test", typ.Name(), fld.Name)
				}
				name = strings.ToLower(fld.Name)
			}
			out[name] = fld
		}
	}
	return out
}

// TestFlagsMatchCLI checks the flag table against the kong tags of the structs cli
// parses get and exec-credential into: a flag added, renamed or given a variable there
// must be known here, or Run could answer a command line the full path reads
// otherwise.
func TestFlagsMatchCLI(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		cli  map[string]reflect.StructField
		skip func(flag) bool
	}{
		{cmdGet, kongFlags(t, reflect.TypeOf(cli.Globals{}), reflect.TypeOf(cli.GetCmd{})), func(flag) bool { return false }},
		{cmdExecCredential, kongFlags(t, reflect.TypeOf(cli.Globals{}), reflect.TypeOf(cli.ExecCredentialCmd{})), func(f flag) bool { return f.getOnly }},
	} {
		for name, fld := range c.cli {
			idx := byLong(name)
			if idx < 0 || c.skip(flags[idx]) {
				t.Errorf("%s: flag --%s (%s) is not in hit's table", c.cmd, name, fld.Name)
				continue
			}
			f := flags[idx]
			if short := fld.Tag.Get("short"); short != string(rune(f.short)) && !(short == "" && f.short == 0) {
				t.Errorf("--%s: short %q in cli, %q here", name, short, string(rune(f.short)))
			}
			env := fld.Tag.Get("env")
			if name == "verbose" && env == "" {
				env = settings.VerboseVariable // read by settings.Verbose in cli, not by kong
			}
			if env != f.env {
				t.Errorf("--%s: variable %q in cli, %q here", name, env, f.env)
			}
			if path := fld.Tag.Get("type") == "path"; path != (f.kind == kindPath || f.kind == kindIgnored) {
				t.Errorf("--%s: type:path is %v in cli, kind %d here", name, path, f.kind)
			}
			switch def := fld.Tag.Get("default"); name {
			case "min-validity":
				if d, _ := time.ParseDuration(def); d != defaultMinValidity {
					t.Errorf("--min-validity default %q in cli, %v here", def, defaultMinValidity)
				}
			case "timeout":
				if d, _ := time.ParseDuration(def); d != defaultTimeout {
					t.Errorf("--timeout default %q in cli, %v here", def, defaultTimeout)
				}
			case "output":
				if def != defaultOutput || fld.Tag.Get("enum") != "json,token,az,azd" {
					t.Errorf("--output default %q, enum %q in cli", def, fld.Tag.Get("enum"))
				}
			}
		}
		for _, f := range flags {
			if _, ok := c.cli[f.long]; !ok && f.long != "help" && !c.skip(f) {
				t.Errorf("hit knows --%s for %s, which cli's %s does not have", f.long, c.cmd, c.cmd)
			}
		}
	}
}

const (
	appA     = "0f1e2d3c-0000-4000-8000-00000000a001"
	appB     = "0f1e2d3c-0000-4000-8000-00000000b002"
	appC     = "0f1e2d3c-0000-4000-8000-00000000c003"
	homeT    = "0f1e2d3c-0000-4000-8000-00000000c0de"
	custT    = "0f1e2d3c-0000-4000-8000-0000000c0570"
	simHost  = "https://127.0.0.1:8443"
	contosoT = "contoso.onmicrosoft.com"
)

// world is a home with saved profiles and cached tokens, and the variables that point
// at it; every PCTOKEN_ variable of the test process, and KUBERNETES_EXEC_INFO, is unset.
type world struct {
	home, altCache, altConfig string
	now                       time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PCTOKEN_") || k == "KUBERNETES_EXEC_INFO" {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	w := &world{
		home:      filepath.Join(dir, "home"),
		altCache:  filepath.Join(dir, "alt-cache"),
		altConfig: filepath.Join(dir, "alt-config"),
		now:       time.Now().Truncate(time.Second),
	}
	t.Setenv("HOME", w.home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(w.home, ".config"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(w.home, ".cache"))

	profiles := profile.Dir(filepath.Join(w.home, ".config", "pctoken-helper", "profiles"))
	for _, p := range []profile.Profile{
		{Name: "default", ClientID: appA, AuthorityHost: simHost, HomeTenant: homeT, Store: "file",
			Scopes: []string{"partner-center"}, Account: profile.Account{Username: "admin@contoso.onmicrosoft.com"}, ConsentedAt: w.now},
		{Name: "contoso", ClientID: appB, Cloud: "usgov", HomeTenant: contosoT},
	} {
		if err := profiles.Save(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(string(profiles), "broken.json"), []byte(`{"client_id": 7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (profile.Dir(filepath.Join(w.altConfig, "profiles"))).Save(profile.Profile{Name: "default", ClientID: appC, AuthorityHost: simHost, HomeTenant: homeT}); err != nil {
		t.Fatal(err)
	}

	pub, _ := cloud.Lookup("public")
	gov, _ := cloud.Lookup("usgov")
	graph, arm, pc := pub.Scope("graph"), pub.Scope("arm"), pub.DefaultScope()
	store := func(dir string, k cache.Key, tok string, valid time.Duration) {
		c, err := cache.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		e := cache.Entry{AccessToken: tok, ExpiresOn: w.now.Add(valid), TenantID: k.Tenant, Scopes: k.Scopes, Account: "admin@contoso.onmicrosoft.com"}
		if err := c.Store(k, e); err != nil {
			t.Fatal(err)
		}
	}
	cacheDir := filepath.Join(w.home, ".cache", "pctoken-helper")
	key := func(prof, app, host, tenant, scope string) cache.Key {
		return cache.Key{Profile: prof, ClientID: app, Authority: host, Tenant: tenant, Scopes: []string{scope}}
	}
	store(cacheDir, key("default", appA, simHost, homeT, graph), "tok.default.graph", time.Hour)
	store(cacheDir, key("default", appA, simHost, custT, graph), "tok.default.graph.customer", time.Hour)
	store(cacheDir, key("default", appA, simHost, homeT, pc), "tok.default.partner-center", time.Hour)
	store(cacheDir, key("default", appA, simHost, homeT, arm), "tok.default.arm.expiring", 2*time.Minute)
	store(cacheDir, key("default", appC, simHost, homeT, graph), "tok.default.graph.app-c", time.Hour)
	store(cacheDir, key("contoso", appB, gov.LoginHost, contosoT, gov.Scope("graph")), "tok.contoso.usgov.graph", time.Hour)
	store(w.altCache, key("default", appA, simHost, homeT, graph), "tok.alt-cache.graph", time.Hour)
	return w
}

type hitCase struct {
	args []string
	env  map[string]string
	hit  string // the token Run answers with, "" if it must leave the command line alone
}

func (w *world) cases() []hitCase {
	e := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []hitCase{
		{args: []string{"get", "-s", "graph", "-o", "token"}, hit: "tok.default.graph"},
		{args: []string{"get", "--scope", "graph"}, hit: "tok.default.graph"},
		{args: []string{"get", "--scope=graph", "--output=az"}, hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph", "-o", "azd"}, hit: "tok.default.graph"},
		{args: []string{"get", "-s", "GRAPH", "-o", "token"}, hit: "tok.default.graph"},
		{args: []string{"get", "-s", "https://graph.microsoft.com/.default", "-o", "json"}, hit: "tok.default.graph"},
		{args: []string{"get"}, hit: "tok.default.partner-center"},
		{args: []string{"get", "-s", "graph", "--tenant", custT}, hit: "tok.default.graph.customer"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_TENANT", custT), hit: "tok.default.graph.customer"},
		{args: []string{"get", "-s", "graph", "--tenant", homeT}, env: e("PCTOKEN_TENANT", custT), hit: "tok.default.graph"},
		{args: []string{"get", "--profile", "contoso", "-s", "graph"}, hit: "tok.contoso.usgov.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_PROFILE", "contoso"), hit: "tok.contoso.usgov.graph"},
		{args: []string{"get", "--profile", "default", "-s", "graph"}, env: e("PCTOKEN_PROFILE", "contoso"), hit: "tok.default.graph"},
		{args: []string{"get", "--profile=", "-s", "graph"}, env: e("PCTOKEN_PROFILE", "contoso"), hit: "tok.default.graph"},
		{args: []string{"get", "-s", "arm"}},
		{args: []string{"get", "-s", "arm", "--min-validity", "1m"}, hit: "tok.default.arm.expiring"},
		{args: []string{"get", "-s", "arm", "--min-validity", "2m"}, hit: "tok.default.arm.expiring"},
		{args: []string{"get", "-s", "arm", "--min-validity", "2m1s"}},
		{args: []string{"get", "-s", "graph", "--cache-dir", w.altCache}, hit: "tok.alt-cache.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_CACHE_DIR", w.altCache), hit: "tok.alt-cache.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_CACHE_DIR", "relative/cache")},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_CACHE_DIR", "")},
		{args: []string{"get", "-s", "graph", "--config-dir", w.altConfig}, hit: "tok.default.graph.app-c"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_CLIENT_ID", appC), hit: "tok.default.graph.app-c"},
		{args: []string{"get", "-s", "graph", "--client-id", appA}, env: e("PCTOKEN_CLIENT_ID", appC), hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_AUTHORITY_HOST", "HTTPS://127.0.0.1:8443/"), hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_AUTHORITY_HOST", "http://127.0.0.1:8443")},
		{args: []string{"get", "-s", "graph", "--store", "file", "--store-dir", "rel", "--client-certificate", "c.pem"}, hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph", "--timeout", "5s"}, hit: "tok.default.graph"},
		// The Key Vault store's settings never make a hit decline, even invalid ones: cli
		// checks them only when it opens the store, which a hit never does.
		{args: []string{"get", "-s", "graph", "--store", "azure-keyvault", "--keyvault-secret", "https://contoso-sam.vault.azure.net/secrets/rt", "--keyvault-auth", "managed-identity", "--rotate-after", "7d"}, hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_STORE", "azure-keyvault", "PCTOKEN_KEYVAULT_SECRET", "not a url", "PCTOKEN_ROTATE_AFTER", "soon"), hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph", "--timeout", "soon"}},
		{args: []string{"get", "-s", "graph", "--min-validity=-1m"}},
		{args: []string{"get", "-s", "graph", "--tenant", "a/b"}},
		{args: []string{"get", "-s", "graph", "--client-id", "not-a-guid"}},
		{args: []string{"get", "-s", "graph", "-v"}},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_VERBOSE", ""), hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_VERBOSE", " "), hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_VERBOSE", "false"), hit: "tok.default.graph"},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_VERBOSE", "1")},
		{args: []string{"get", "-s", "graph"}, env: e("PCTOKEN_VERBOSE", "maybe")},
		{args: []string{"get", "-s", "graph", "--force-refresh"}},
		{args: []string{"get", "-s", "graph", "--request", "-"}},
		{args: []string{"get", "-s", "graph,arm"}},
		{args: []string{"get", "-s", "graph", "-s", "arm"}},
		{args: []string{"get", "-s", `gr\aph`}},
		{args: []string{"get", "-s", "graph", "--output", "yaml"}},
		{args: []string{"get", "-s", "graph", "--tenant", homeT, "--tenant", custT}},
		{args: []string{"get", "-s", "graph", "--unknown"}},
		{args: []string{"get", "-s", "graph", "--"}},
		{args: []string{"get", "-s", "graph", "extra"}},
		{args: []string{"get", "-s"}},
		{args: []string{"get", "-sgraph"}},
		{args: []string{"get", "--help"}},
		{args: []string{"--profile", "contoso", "get", "-s", "graph"}},
		{args: []string{"get", "--profile", "broken", "-s", "graph"}},
		{args: []string{"get", "--profile", "nobody", "-s", "graph"}},
		{args: []string{"get", "--profile", "bad/name", "-s", "graph"}},
		{args: []string{"get", "--cloud", "mars", "-s", "graph"}},
		{args: []string{"exec-credential", "--scope", "graph"}, hit: "tok.default.graph"},
		{args: []string{"exec-credential"}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1beta1", `{"scopes":["graph"]}`)), hit: "tok.default.graph"},
		{args: []string{"exec-credential"}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"profile":"contoso","scopes":"graph"}`)), hit: "tok.contoso.usgov.graph"},
		{args: []string{"exec-credential", "-s", "graph"}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"tenant":"`+custT+`"}`)), hit: "tok.default.graph.customer"},
		{args: []string{"exec-credential", "-s", "graph", "--tenant", homeT}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"tenant":"`+custT+`"}`)), hit: "tok.default.graph"},
		{args: []string{"exec-credential", "-s", "graph"}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"tenant":"`+custT+`"}`), "PCTOKEN_TENANT", homeT), hit: "tok.default.graph"},
		{args: []string{"exec-credential", "-s", "graph"}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"profile":"contoso"}`), "PCTOKEN_PROFILE", "default"), hit: "tok.default.graph"},
		{args: []string{"exec-credential", "-s", "graph", "--scope="}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"scopes":["arm"]}`)), hit: "tok.default.graph"},
		{args: []string{"exec-credential", "--scope="}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"scopes":["graph"]}`)), hit: "tok.default.graph"},
		{args: []string{"exec-credential"}}, // no scope: exit 2 from the full path
		{args: []string{"exec-credential", "-s", "arm"}},
		{args: []string{"exec-credential", "-s", "graph", "-o", "token"}},
		{args: []string{"exec-credential", "-s", "graph", "--parallel", "2"}},
		{args: []string{"exec-credential", "-s", "graph"}, env: e("KUBERNETES_EXEC_INFO", "{not json")},
		{args: []string{"exec-credential", "-s", "graph"}, env: e("KUBERNETES_EXEC_INFO", execInfo("v2", ""))},
		{args: []string{"exec-credential"}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"scopes":["graph","arm"]}`))},
		{args: []string{"exec-credential", "-s", "graph"}, env: e("KUBERNETES_EXEC_INFO", execInfo("v1", `{"tenant":"a/b"}`))},
		{args: []string{"version"}},
		{args: nil},
	}
}

// execInfo is a KUBERNETES_EXEC_INFO of client.authentication.k8s.io/<version>, with
// config as the cluster's exec extension ("" for none).
func execInfo(version, config string) string {
	cluster := ""
	if config != "" {
		cluster = `,"cluster":{"server":"https://aks.example:443","config":` + config + `}`
	}
	return `{"apiVersion":"client.authentication.k8s.io/` + version + `","kind":"ExecCredential","spec":{"interactive":false` + cluster + `}}`
}

func setEnv(t *testing.T, env map[string]string) {
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// runCLI is the full path: cli.Run as main calls it, in this process.
func runCLI(args []string, now time.Time) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	env := cli.OS()
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(""), &out, &errb
	env.Now = func() time.Time { return now }
	code = cli.Run(context.Background(), args, env)
	return out.String(), errb.String(), code
}

// TestSameAnswerAsCLI runs each command line through Run and, where Run answers,
// through cli.Run too: the answers must be the same bytes and the same exit code.
func TestSameAnswerAsCLI(t *testing.T) {
	w := newWorld(t)
	for i, c := range w.cases() {
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			setEnv(t, c.env)
			var out, errb bytes.Buffer
			code, handled := Run(c.args, &out, &errb, w.now)
			if !handled {
				if c.hit != "" {
					t.Fatalf("Run(%q, env %v) left a cache hit (%s) to the full path", c.args, c.env, c.hit)
				}
				if out.Len()+errb.Len() != 0 {
					t.Fatalf("Run(%q) wrote %q, %q and did not answer", c.args, out.String(), errb.String())
				}
				return
			}
			if c.hit == "" {
				t.Fatalf("Run(%q, env %v) answered %q; the full path must handle it", c.args, c.env, out.String())
			}
			if !strings.Contains(out.String(), c.hit) {
				t.Fatalf("Run(%q, env %v) answered %q, want token %s", c.args, c.env, out.String(), c.hit)
			}
			wantOut, wantErr, wantCode := runCLI(c.args, w.now)
			if out.String() != wantOut || errb.String() != wantErr || code != wantCode {
				t.Fatalf("Run(%q, env %v):\n  hit: exit %d, stdout %q, stderr %q\n  cli: exit %d, stdout %q, stderr %q",
					c.args, c.env, code, out.String(), errb.String(), wantCode, wantOut, wantErr)
			}
		})
	}
}

// TestBinaryAnswersBeforeKong runs the real binary: a hit is answered, byte for byte
// as cli.Run answers it, before kong and the other heavy packages are initialised
// (GODEBUG=inittrace=1 lists each package as it is initialised); anything else is
// left to the full path, which initialises them.
func TestBinaryAnswersBeforeKong(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "pctoken-helper")
	build := exec.Command("go", "build", "-o", bin, "github.com/pctoken/pctoken-helper/cmd/pctoken-helper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	w := newWorld(t)
	for i, c := range w.cases() {
		if i%4 != 0 && c.hit == "" {
			continue // a sample of the command lines Run leaves alone is enough here
		}
		if strings.Contains(c.hit, "expiring") {
			continue // fresh at w.now, maybe not a moment later on the binary's clock
		}
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			setEnv(t, c.env)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
			cmd.Dir = t.TempDir() // relative folders in the cases land there, not in the source tree
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			_ = cmd.Run()
			trace, stderr := splitTrace(errb.String())
			kong := strings.Contains(trace, "github.com/alecthomas/kong ")
			if c.hit == "" {
				if !kong {
					t.Fatalf("%q: kong was never initialised, so the full path did not run\nstdout %q", c.args, out.String())
				}
				return
			}
			if kong || strings.Contains(trace, "microsoft-authentication-library-for-go/apps/internal/oauth") {
				t.Fatalf("%q: the hit waited for kong or MSAL to initialise:\n%s", c.args, trace)
			}
			// The binary used the real clock: compare with cli at a time the token
			// was as fresh as at w.now.
			wantOut, wantErr, wantCode := runCLI(c.args, w.now)
			if out.String() != wantOut || stderr != wantErr || cmd.ProcessState.ExitCode() != wantCode {
				t.Fatalf("%q, env %v:\n  binary: exit %d, stdout %q, stderr %q\n  cli:    exit %d, stdout %q, stderr %q",
					c.args, c.env, cmd.ProcessState.ExitCode(), out.String(), stderr, wantCode, wantOut, wantErr)
			}
		})
	}
}

// splitTrace separates GODEBUG=inittrace lines from the rest of stderr.
func splitTrace(stderr string) (trace, rest string) {
	var tb, rb strings.Builder
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if strings.HasPrefix(line, "init ") {
			tb.WriteString(line)
		} else {
			rb.WriteString(line)
		}
	}
	return tb.String(), rb.String()
}
