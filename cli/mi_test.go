package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMiArgvToInput(t *testing.T) {
	for _, k := range []string{"PCTOKEN_PROFILE", "PCTOKEN_TENANT"} {
		t.Setenv(k, "x")
		os.Unsetenv(k)
	}
	root, kctx, err := parse(t, "mi", "exec", "--profile", "contoso", "--tenant", "fabrikam.onmicrosoft.com",
		"--allow-resource", "arm", "--allow-resource", "https://graph.microsoft.com", "--tenant-alias", "fab=fabrikam.onmicrosoft.com",
		"--", "az", "login", "--identity", "--tenant", "other")
	if err != nil {
		t.Fatal(err)
	}
	m := root.Mi.Exec
	if kctx.Command() != "mi exec <command>" || root.Profile != "contoso" || root.Tenant != "fabrikam.onmicrosoft.com" {
		t.Fatalf("command %q, globals %+v", kctx.Command(), root.Globals)
	}
	// The child's own flags stay the child's, even one named like the helper's.
	// kong keeps the "--" for a passthrough argument; Run drops it.
	if got := strings.Join(m.Command, " "); got != "-- az login --identity --tenant other" {
		t.Errorf("command %q", got)
	}
	root, _, err = parse(t, "mi", "exec", "az", "account", "show", "--output", "json")
	if got := strings.Join(root.Mi.Exec.Command, " "); err != nil || got != "az account show --output json" {
		t.Errorf("without --: command %q, %v", got, err)
	}
	if !slices.Equal(m.AllowResource, []string{"arm", "https://graph.microsoft.com"}) || m.TenantAlias["fab"] != "fabrikam.onmicrosoft.com" ||
		m.MinValidity != 5*time.Minute || m.Timeout != 30*time.Second {
		t.Errorf("exec input %+v", m)
	}

	root, _, err = parse(t, "mi", "serve", "--listen", "127.0.0.1:8123", "--print-env", "pwsh")
	if err != nil || root.Mi.Serve.Listen != "127.0.0.1:8123" || root.Mi.Serve.PrintEnv != "pwsh" {
		t.Fatalf("serve input %+v, %v", root.Mi.Serve, err)
	}
	if _, _, err := parse(t, "mi", "serve", "--print-env", "fish"); err == nil {
		t.Error("--print-env fish accepted")
	}
}

func TestChildEnv(t *testing.T) {
	in := []string{"PATH=/bin", "MSI_ENDPOINT=x", "MSI_SECRET=y", "IMDS_ENDPOINT=z", "IDENTITY_SERVER_THUMBPRINT=t",
		"IDENTITY_ENDPOINT=old", "IDENTITY_HEADER=old", "PCTOKEN_CLIENT_SECRET=s", "PCTOKEN_FILE_PASSPHRASE=p",
		"PCTOKEN_REFRESH_TOKEN=r", "PCTOKEN_PROFILE=contoso", "AZURE_CLIENT_ID=keep", "NO_PROXY=.corp.example"}
	got := childEnv(in, "http://127.0.0.1:1/e", "secret")
	want := []string{"PATH=/bin", "PCTOKEN_PROFILE=contoso", "AZURE_CLIENT_ID=keep", "NO_PROXY=.corp.example,127.0.0.1", "no_proxy=127.0.0.1",
		"IDENTITY_ENDPOINT=http://127.0.0.1:1/e", "IDENTITY_HEADER=secret"}
	if runtime.GOOS != "windows" && !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
	// Already there: left as it was.
	got = childEnv([]string{"no_proxy=localhost, 127.0.0.1", "NO_PROXY=127.0.0.1"}, "http://127.0.0.1:1/e", "secret")
	if runtime.GOOS != "windows" && !slices.Equal(got[:2], []string{"no_proxy=localhost, 127.0.0.1", "NO_PROXY=127.0.0.1"}) {
		t.Errorf("childEnv changed a NO_PROXY that names 127.0.0.1: %q", got)
	}
}

// TestRenderEnv: what mi serve prints is read back by each shell as the same values.
func TestRenderEnv(t *testing.T) {
	vars := []envVar{{"IDENTITY_ENDPOINT", "http://127.0.0.1:8123/pctoken-helper/default/home"}, {"IDENTITY_HEADER", "it's $HOME `x`"}}
	unset := []string{"MSI_ENDPOINT", "IMDS_ENDPOINT"}

	var m map[string]string
	if err := json.Unmarshal([]byte(renderEnv("json", vars, unset)), &m); err != nil || m["IDENTITY_HEADER"] != vars[1].value {
		t.Errorf("json: %v %v", m, err)
	}
	if got := renderEnv("pwsh", vars, unset); !strings.Contains(got, "$env:IDENTITY_HEADER = 'it''s $HOME `x`'\n") || !strings.Contains(got, "Remove-Item Env:MSI_ENDPOINT") {
		t.Errorf("pwsh:\n%s", got)
	}
	if got := renderEnv("cmd", vars[:1], unset); !strings.Contains(got, `set "IDENTITY_ENDPOINT=http://127.0.0.1:8123/pctoken-helper/default/home"`) || !strings.Contains(got, "set MSI_ENDPOINT=\n") {
		t.Errorf("cmd:\n%s", got)
	}
	if runtime.GOOS == "windows" {
		return
	}
	script := renderEnv("sh", vars, unset) + `printf '%s\n%s\n%s\n%s\n%s' "$IDENTITY_ENDPOINT" "$IDENTITY_HEADER" "${MSI_ENDPOINT-unset}" "$NO_PROXY" "$no_proxy"`
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"MSI_ENDPOINT=old", "HOME=/nowhere", "NO_PROXY=.corp.example"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := vars[0].value + "\n" + vars[1].value + "\nunset\n.corp.example,127.0.0.1\n127.0.0.1"; string(out) != want {
		t.Errorf("sh read back %q, want %q", out, want)
	}
}
