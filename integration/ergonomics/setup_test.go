package ergonomics

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

const (
	azureDevOps  = "499b84ac-1321-427f-aa17-267ca6975798"
	aksServerApp = "6dae42f8-4368-4678-94ff-3960e28e3630"
)

func gitEnv() []string {
	return []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"}
}

func TestSetupGit(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")

	// A dry run prints the commands and changes nothing.
	res := e.MustRun("setup", "git", "--profile", "contoso", "--dry-run")
	want := "git config --global --add credential.https://dev.azure.com.helper '!pctoken-helper git-credential --profile contoso --scope " + azureDevOps + "/.default'"
	if !strings.Contains(res.Stdout, want) || !strings.Contains(res.Stdout, "credential.https://*.visualstudio.com.helper") {
		t.Fatalf("dry run printed:\n%s\nwant a line %s", res.Stdout, want)
	}
	if _, err := os.Stat(filepath.Join(e.Vars["HOME"], ".gitconfig")); err == nil {
		t.Fatal("the dry run wrote ~/.gitconfig")
	}

	// The recipe of docs/git.md, twice: one helper entry, after the empty one that
	// clears helpers before it.
	for range 2 {
		if _, stderr, code := e.program(t, "", nil, "sh", "-e", "-c", recipe(t, "git.md", "setup-git")); code != 0 {
			t.Fatalf("the setup-git recipe: exit %d\n%s", code, stderr)
		}
	}
	out, stderr, code := e.program(t, "", gitEnv(), "git", "config", "--global", "--get-all", "credential.https://dev.azure.com.helper")
	if code != 0 {
		t.Fatalf("git config: exit %d\n%s", code, stderr)
	}
	helpers := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(helpers) != 2 || helpers[0] != "" || !strings.HasPrefix(helpers[1], "!pctoken-helper git-credential --profile contoso") {
		t.Fatalf("helpers after two runs: %q", helpers)
	}

	// git itself runs the helper and gets a token for Azure DevOps.
	out, stderr, code = e.program(t, "protocol=https\nhost=dev.azure.com\npath=contoso/x\n\n", gitEnv(), "git", "credential", "fill")
	if code != 0 {
		t.Fatalf("git credential fill: exit %d\n%s", code, stderr)
	}
	var password string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "password="); ok {
			password = v
		}
	}
	c, err := e.Sim.ValidateAccessToken(password)
	if err != nil || c.Audience != azureDevOps {
		t.Fatalf("git got no Azure DevOps token (%v, audience %q)", err, c.Audience)
	}

	// Another host: the helper line allows it with --host.
	e.MustRun("setup", "git", "--profile", "contoso", "--host", "git.contoso.example", "--scope", "azure-devops")
	out, stderr, code = e.program(t, "protocol=https\nhost=git.contoso.example\n\n", gitEnv(), "git", "credential", "fill")
	if code != 0 || !strings.Contains(out, "password=") {
		t.Fatalf("git credential fill for the added host: exit %d\n%s", code, stderr)
	}

	// A mistyped profile: exit 2 naming the saved one, and nothing written.
	before, _ := os.ReadFile(filepath.Join(e.Vars["HOME"], ".gitconfig"))
	res = e.Run("setup", "git", "--profile", "contosso")
	after, _ := os.ReadFile(filepath.Join(e.Vars["HOME"], ".gitconfig"))
	if res.Code != 2 || !strings.Contains(res.Stderr, "did you mean contoso?") || string(after) != string(before) {
		t.Fatalf("setup git --profile contosso: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := e.Run("setup", "git", "--profile", "contoso", "--host", "dev.azure.com/evil"); res.Code != 2 {
		t.Fatalf("a host with a path: exit %d\n%s", res.Code, res.Stderr)
	}
}

// kubeAPI answers /version for AKS tokens of one tenant, 401 otherwise.
type kubeAPI struct {
	*httptest.Server
	sim    *entrasim.Sim
	tenant string

	mu                sync.Mutex
	accepted, refused int
}

func newKubeAPI(t *testing.T, sim *entrasim.Sim, tenant string) *kubeAPI {
	k := &kubeAPI{sim: sim, tenant: tenant}
	k.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		c, err := sim.ValidateAccessToken(tok)
		if err == nil && (c.Audience != aksServerApp || c.TenantID != tenant) {
			err = fmt.Errorf("audience %s, tenant %s", c.Audience, c.TenantID)
		}
		k.mu.Lock()
		if err != nil {
			k.refused++
		} else {
			k.accepted++
		}
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
			return
		}
		io.WriteString(w, `{"major":"1","minor":"32","gitVersion":"v1.32.4","platform":"linux/amd64"}`)
	}))
	t.Cleanup(k.Close)
	return k
}

// azKubeconfig is what az aks get-credentials writes: a kubelogin user, a comment,
// and a second cluster and user.
func azKubeconfig(k *kubeAPI) string {
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Certificate().Raw}))
	return `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ` + ca + `
    server: ` + k.URL + `
  name: fabrikam-aks
- cluster:
    server: https://other.invalid:6443
  name: other
contexts:
- context:
    cluster: fabrikam-aks
    user: clusterUser_rg_fabrikam-aks
  name: fabrikam-aks
- context:
    cluster: other
    user: other-admin
  name: other
current-context: fabrikam-aks
kind: Config
preferences: {}
users:
- name: clusterUser_rg_fabrikam-aks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - get-token
      - --environment
      - AzurePublicCloud
      - --server-id
      - 6dae42f8-4368-4678-94ff-3960e28e3630
      command: kubelogin
      env: null
      installHint: kubelogin is not installed
      provideClusterInfo: false
# kept as it is
- name: other-admin
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
`
}

func TestSetupKubeconfig(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	k := newKubeAPI(t, e.Sim, entrasim.CustomerTenantID)
	kc := filepath.Join(t.TempDir(), "config")
	orig := azKubeconfig(k)
	if err := os.WriteFile(kc, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	e.Vars["KUBECONFIG"] = kc

	// Before: kubectl runs kubelogin, which is not there.
	if _, _, code := e.program(t, "", nil, "kubectl", "get", "--raw", "/version"); code == 0 {
		t.Fatal("kubectl worked before the conversion")
	}

	res := e.MustRun("setup", "kubeconfig", "--profile", "contoso", "--tenant", entrasim.CustomerTenantDomain, "--dry-run")
	if b, _ := os.ReadFile(kc); string(b) != orig {
		t.Fatal("the dry run changed the kubeconfig")
	}
	for _, want := range []string{"command: pctoken-helper", "- exec-credential", "- " + aksServerApp + "/.default", "- " + entrasim.CustomerTenantDomain, "# kept as it is", "client-key-data: S0VZCg=="} {
		if !strings.Contains(res.Stdout, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, res.Stdout)
		}
	}
	if strings.Contains(res.Stdout, "kubelogin") {
		t.Fatalf("kubelogin survived:\n%s", res.Stdout)
	}

	e.MustRun("setup", "kubeconfig", "--profile", "contoso", "--tenant", entrasim.CustomerTenantDomain)
	first, _ := os.ReadFile(kc)
	if string(first) != res.Stdout {
		t.Fatalf("the file differs from the dry run:\n%s", first)
	}
	fi, _ := os.Stat(kc)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640 as before", fi.Mode().Perm())
	}
	res = e.MustRun("setup", "kubeconfig", "--profile", "contoso", "--tenant", entrasim.CustomerTenantDomain)
	if second, _ := os.ReadFile(kc); string(second) != string(first) || !strings.Contains(res.Stderr, "nothing changed") {
		t.Fatalf("second run changed the file (%s)", res.Stderr)
	}
	if entries, _ := os.ReadDir(filepath.Dir(kc)); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}

	// kubectl runs the plugin and the customer's API server accepts the token; the
	// recipe of docs/kubernetes.md (setup, then kubectl) does the same on the file.
	out, stderr, code := e.program(t, "", nil, "kubectl", "get", "--raw", "/version")
	if code != 0 || !strings.Contains(out, "v1.32.4") {
		t.Fatalf("kubectl: exit %d\n%s\n%s", code, out, stderr)
	}
	out, stderr, code = e.program(t, "", nil, "sh", "-e", "-c", recipe(t, "kubernetes.md", "setup-kubeconfig"))
	if code != 0 || !strings.Contains(out, "v1.32.4") {
		t.Fatalf("the setup-kubeconfig recipe: exit %d\n%s\n%s", code, out, stderr)
	}
	if again, _ := os.ReadFile(kc); string(again) != string(first) {
		t.Fatal("the recipe changed the converted file")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.accepted == 0 || k.refused != 0 {
		t.Fatalf("API server accepted %d, refused %d", k.accepted, k.refused)
	}
}

func TestSetupKubeconfigMistakes(t *testing.T) {
	e := newEnv(t)
	// With no profile saved yet, configuring first is allowed, with a warning.
	kc0 := filepath.Join(t.TempDir(), "config")
	os.WriteFile(kc0, []byte("apiVersion: v1\nkind: Config\ncontexts:\n- name: a\n  context: {user: u}\ncurrent-context: a\nusers: []\n"), 0o600)
	if res := e.MustRun("setup", "kubeconfig", "--kubeconfig", kc0, "--profile", "contoso"); !strings.Contains(res.Stderr, "warning: profile contoso is not saved yet") {
		t.Errorf("no warning for a profile not saved yet:\n%s", res.Stderr)
	}
	e.Consent("--profile", "contoso")
	if res := e.Run("setup", "kubeconfig", "--kubeconfig", kc0, "--profile", "contosso"); res.Code != 2 || !strings.Contains(res.Stderr, "did you mean contoso?") {
		t.Errorf("a mistyped profile: exit %d\n%s", res.Code, res.Stderr)
	}
	kc := filepath.Join(t.TempDir(), "config")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--kubeconfig", kc, "--profile", "contoso"}, 5, "az aks get-credentials"},
		{[]string{"--kubeconfig", kc, "--context", "a", "--user", "b"}, 2, "not both"},
	} {
		res := e.Run(append([]string{"setup", "kubeconfig"}, tt.args...)...)
		if res.Code != tt.code || !strings.Contains(res.Stderr, tt.want) {
			t.Errorf("%v: exit %d\n%s", tt.args, res.Code, res.Stderr)
		}
	}
	os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\ncontexts:\n- name: a\n  context: {user: u}\ncurrent-context: a\nusers: []\n"), 0o600)
	res := e.Run("setup", "kubeconfig", "--kubeconfig", kc, "--context", "b", "--profile", "contoso")
	if res.Code != 2 || !strings.Contains(res.Stderr, "no context b") || !strings.Contains(res.Stderr, "contexts: a") {
		t.Errorf("unknown context: exit %d\n%s", res.Code, res.Stderr)
	}
}
