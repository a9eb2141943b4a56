package mi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

var (
	jsOnce sync.Once
	jsDir  string
	jsErr  error
)

// jsClient installs testdata/js (@azure/identity, pinned by its package-lock.json) with
// npm ci into the user's cache folder, once per lock file, never into the source tree,
// and returns the path of client.mjs beside its node_modules.
func jsClient(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not on PATH (.ci/run installs nodejs)", tool)
			}
			t.Skipf("%s is not on PATH", tool)
		}
	}
	jsOnce.Do(func() { jsDir, jsErr = installJS() })
	if jsErr != nil {
		t.Fatalf("install @azure/identity: %v", jsErr)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "js", "client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(script)
	path := filepath.Join(jsDir, "client-"+hex.EncodeToString(sum[:6])+".mjs")
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, script, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func installJS() (string, error) {
	var files = map[string][]byte{}
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "js", name))
		if err != nil {
			return "", err
		}
		files[name] = b
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	parent := filepath.Join(cache, "pctoken-helper-tests")
	dir := filepath.Join(parent, "mi-js-"+hex.EncodeToString(h.Sum(nil)[:8]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@azure", "identity", "package.json")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, "mi-js-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", errors.New(err.Error() + "\n" + out.String())
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, statErr := os.Stat(dir); statErr != nil {
			return "", err
		}
	}
	return dir, nil
}

// jsRun runs client.mjs under mi exec.
func (e *env) jsRun(t *testing.T, script, cred, clientID string, a *api, miArgs ...string) ([]childLine, string, int) {
	t.Helper()
	return e.jsRunEnv(t, nil, script, cred, clientID, a, miArgs...)
}

func (e *env) jsRunEnv(t *testing.T, extra map[string]string, script, cred, clientID string, a *api, miArgs ...string) ([]childLine, string, int) {
	t.Helper()
	args := append(append([]string{"mi", "exec"}, miArgs...), "--", "node", script)
	vars := map[string]string{
		"MI_CHILD_CRED":       cred,
		"MI_CHILD_CLIENT_ID":  clientID,
		"MI_CHILD_SCOPES":     armScope + "," + graphScope,
		"MI_CHILD_APIS":       a.base + "/arm," + a.base + "/graph",
		"NODE_EXTRA_CA_CERTS": a.caFile,
	}
	for k, v := range extra {
		vars[k] = v
	}
	res := e.run(t, vars, args...)
	return childLines(t, res.Stdout), res.Stderr, res.Code
}

// TestAzureIdentityJS: @azure/identity's ManagedIdentityCredential and
// DefaultAzureCredential (Node, MSAL Node inside) get ARM and Graph tokens in the home
// and a customer tenant, the second program from the helper's cache.
func TestAzureIdentityJS(t *testing.T) {
	script := jsClient(t)
	e := newEnv(t)
	home := newAPI(t, e.Sim, entrasim.HomeTenantID)
	before := grants(e.Sim)
	lines, stderr, code := e.jsRun(t, script, "mi", "", home)
	checkTokens(t, e, lines, stderr, code, entrasim.HomeTenantID)
	if n := grants(e.Sim) - before; n != 2 {
		t.Errorf("%d refresh-token redemptions for two resources, want 2", n)
	}
	before = grants(e.Sim)
	// A proxy in the environment (here one that is not there) is not used for the
	// endpoint: @azure/identity would send the request, header included, to the proxy
	// (checked by hand), but mi exec puts 127.0.0.1 in NO_PROXY.
	lines, stderr, code = e.jsRunEnv(t, map[string]string{"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}, script, "dac", "", home)
	checkTokens(t, e, lines, stderr, code, entrasim.HomeTenantID)
	if n := grants(e.Sim) - before; n != 0 {
		t.Errorf("second program: %d redemptions, want 0 (the cache answers)", n)
	}

	customer := newAPI(t, e.Sim, entrasim.CustomerTenantID)
	lines, stderr, code = e.jsRun(t, script, "mi", "", customer, "--tenant", entrasim.CustomerTenantID)
	checkTokens(t, e, lines, stderr, code, entrasim.CustomerTenantID)
	before = grants(e.Sim)
	lines, stderr, code = e.jsRun(t, script, "mi", "fabrikam", customer, "--tenant-alias", "fabrikam="+entrasim.CustomerTenantID)
	checkTokens(t, e, lines, stderr, code, entrasim.CustomerTenantID)
	if n := grants(e.Sim) - before; n != 0 {
		t.Errorf("through the alias: %d redemptions, want 0", n)
	}
}
