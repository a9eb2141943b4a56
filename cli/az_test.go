package cli

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestAzArgvPassesThrough: everything after "az" is az's command line, its flags
// included (kong parses none of them); the helper's global flags go before "az".
func TestAzArgvPassesThrough(t *testing.T) {
	for _, tc := range []struct {
		argv    []string
		profile string
		args    []string
	}{
		{[]string{"az", "account", "get-access-token", "--tenant", "t", "-o=json"}, "", []string{"account", "get-access-token", "--tenant", "t", "-o=json"}},
		{[]string{"--profile", "contoso", "az", "account", "show", "--subscription", "s", "--verbose"}, "contoso", []string{"account", "show", "--subscription", "s", "--verbose"}},
		{[]string{"az", "--help"}, "", []string{"--help"}},
		{[]string{"az", "-o", "json", "version"}, "", []string{"-o", "json", "version"}},
		{[]string{"az"}, "", nil},
	} {
		root, kctx, err := parse(t, tc.argv...)
		if err != nil {
			t.Errorf("%q: %v", tc.argv, err)
			continue
		}
		if !strings.HasPrefix(kctx.Command(), "az") || root.Profile != tc.profile || root.Tenant != "" || !slices.Equal(root.Az.Args, tc.args) {
			t.Errorf("%q: command %q, profile %q, tenant %q, args %q", tc.argv, kctx.Command(), root.Profile, root.Tenant, root.Az.Args)
		}
	}
}

// TestAzRefusesAsAz: what is not answered exits 2 with az's ERROR line on stderr and
// nothing on stdout; version needs no profile.
func TestAzRefusesAsAz(t *testing.T) {
	for _, args := range [][]string{
		{"az"},
		{"az", "group", "list"},
		{"az", "account", "get-access-token", "--bogus"},
		{"az", "account", "show", "-o", "table"},
		{"az", "version", "--query", "length(@)"},
		{"az", "version", "-o", "tsv"},
	} {
		env, out, errb := testEnv("")
		if code := Run(context.Background(), args, env); code != exitUsage || out.Len() != 0 || !strings.HasPrefix(errb.String(), "ERROR: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errb)
		}
		if !strings.Contains(errb.String(), "hint: pctoken-helper az --help") {
			t.Errorf("%q: no hint in %q", args, errb)
		}
	}
	env, out, errb := testEnv("")
	if code := Run(context.Background(), []string{"--config-dir", t.TempDir(), "az", "version", "-o=json"}, env); code != 0 {
		t.Fatalf("version: exit %d, %q", code, errb)
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v["azure-cli"] == nil {
		t.Errorf("version: %v %q", err, out)
	}
	env, out, errb = testEnv("")
	if code := Run(context.Background(), []string{"az", "account", "show", "--help"}, env); code != 0 || !strings.Contains(out.String(), "az account show") || errb.Len() != 0 {
		t.Errorf("--help: exit %d, %q %q", code, out, errb)
	}
}

// TestAzRefusesToCallItself: a pctoken-helper az started by pctoken-helper az (the Key
// Vault store's az being the shim) exits 5 at once; the mark is set only while the
// command runs.
func TestAzRefusesToCallItself(t *testing.T) {
	env, out, errb := testEnv("")
	env.Getenv = func(k string) string {
		if k == azShimVariable {
			return "1"
		}
		return os.Getenv(k)
	}
	if code := Run(context.Background(), []string{"az", "version"}, env); code != exitConfig || out.Len() != 0 || !strings.Contains(errb.String(), "ERROR: the az shim was run by pctoken-helper az itself") {
		t.Errorf("nested: exit %d, stdout %q, stderr %q", code, out, errb)
	}
	env, _, _ = testEnv("")
	var during string
	env.Stdout = writerFunc(func(p []byte) (int, error) { during = os.Getenv(azShimVariable); return len(p), nil })
	if code := Run(context.Background(), []string{"az", "version"}, env); code != 0 || during != "1" || os.Getenv(azShimVariable) != "" {
		t.Errorf("exit %d; %s during the run %q, after %q", code, azShimVariable, during, os.Getenv(azShimVariable))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
