package consumers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/internal/testpty"
)

// aksServerApp is the AKS server application: the audience of every AKS token.
const aksServerApp = "6dae42f8-4368-4678-94ff-3960e28e3630"

// The server URL and CA placeholders of the kubeconfig recipes.
const (
	recipeServer = "https://fabrikam-aks-dns-4f2a1b3c.hcp.westeurope.azmk8s.io:443"
	recipeCA     = "<CA_DATA>"
)

// kubeAPI is an https Kubernetes API endpoint that answers /version only for valid
// AKS tokens of its tenant, and 401 with a Status otherwise, as the API server does.
type kubeAPI struct {
	*httptest.Server
	api apiServer

	mu       sync.Mutex
	accepted []string // tokens accepted, in order
	refused  []string // why requests were refused
	paths    []string // paths of the accepted requests
}

func newKubeAPI(t *testing.T, sim *entrasim.Sim, tenant string) *kubeAPI {
	k := &kubeAPI{api: apiServer{sim: sim, audience: aksServerApp, tenant: tenant}}
	k.Server = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.Close)
	return k
}

func (k *kubeAPI) serve(w http.ResponseWriter, r *http.Request) {
	tok := bearer(r)
	_, err := k.api.check(tok)
	if tok == "" {
		err = fmt.Errorf("no bearer token")
	}
	k.mu.Lock()
	if err != nil {
		k.refused = append(k.refused, r.URL.Path+": "+err.Error())
	} else {
		k.accepted = append(k.accepted, tok)
		k.paths = append(k.paths, r.URL.Path)
	}
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
		return
	}
	io.WriteString(w, `{"major":"1","minor":"32","gitVersion":"v1.32.4","platform":"linux/amd64"}`)
}

func (k *kubeAPI) counts() (accepted, refused int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.accepted), len(k.refused)
}

func (k *kubeAPI) lastAccepted() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.accepted) == 0 {
		return ""
	}
	return k.accepted[len(k.accepted)-1]
}

func (k *kubeAPI) caData() string {
	return base64.StdEncoding.EncodeToString(pemCert(k.Certificate().Raw))
}

// kubeconfigRecipe is a kubeconfig recipe of docs/kubernetes.md pointed at k.
func kubeconfigRecipe(t *testing.T, name string, k *kubeAPI) string {
	return substitute(t, recipe(t, "kubernetes.md", name), recipeServer, k.URL, recipeCA, k.caData())
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectl runs the kubectl on PATH in e's environment.
func (e *env) kubectl(t *testing.T, extraEnv []string, args ...string) (string, string, int) {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return run(t, e.command(ctx, extraEnv, kubectl, args...), "")
}

// TestKubectlWithDocumentedKubeconfig copies the kubeconfig of docs/kubernetes.md,
// points it at an API endpoint of the customer's tenant, and runs kubectl with it.
func TestKubectlWithDocumentedKubeconfig(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	k := newKubeAPI(t, e.Sim, entrasim.CustomerTenantID)
	kc := writeFile(t, "kubeconfig", kubeconfigRecipe(t, "kubeconfig", k))

	out, stderr, code := e.kubectl(t, nil, "--kubeconfig", kc, "get", "--raw", "/version")
	if code != 0 {
		t.Fatalf("kubectl: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(out, `"gitVersion":"v1.32.4"`) {
		t.Fatalf("kubectl printed %q", out)
	}
	// kubectl 1.32 asks for /version twice in get --raw /version; count answers, not calls.
	acc, ref := k.counts()
	if acc == 0 || ref != 0 {
		t.Fatalf("API server accepted %d (%v) and refused %v", acc, k.paths, k.refused)
	}

	// A second kubectl process gets the cached token: no request to the identity provider.
	before := e.Sim.Stats().Requests["token"]
	if _, stderr, code := e.kubectl(t, nil, "--kubeconfig", kc, "get", "--raw", "/version"); code != 0 {
		t.Fatalf("second kubectl: exit %d\n%s", code, stderr)
	}
	if after := e.Sim.Stats().Requests["token"]; after != before {
		t.Errorf("second kubectl made %d token requests, want 0 (a cache hit)", after-before)
	}
	if acc2, ref := k.counts(); acc2 <= acc || ref != 0 {
		t.Errorf("second kubectl: API server accepted %d more, refused %v", acc2-acc, k.refused)
	}
}

// TestKubectlConfigRecipe runs the `kubectl config` commands of docs/kubernetes.md on
// a kubeconfig holding only the cluster, as `az aks get-credentials` leaves it.
func TestKubectlConfigRecipe(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	k := newKubeAPI(t, e.Sim, entrasim.CustomerTenantID)
	caFile := writeFile(t, "ca.pem", string(pemCert(k.Certificate().Raw)))
	kc := filepath.Join(t.TempDir(), "config")
	kenv := []string{"KUBECONFIG=" + kc}
	if _, stderr, code := e.kubectl(t, kenv, "config", "set-cluster", "fabrikam-aks", "--server", k.URL, "--certificate-authority", caFile, "--embed-certs"); code != 0 {
		t.Fatalf("set-cluster: exit %d\n%s", code, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sh := e.command(ctx, kenv, "/bin/sh", "-e", "-c", recipe(t, "kubernetes.md", "kubectl-config"))
	if _, stderr, code := run(t, sh, ""); code != 0 {
		t.Fatalf("the kubectl config recipe: exit %d\n%s", code, stderr)
	}
	out, stderr, code := e.kubectl(t, kenv, "get", "--raw", "/version")
	if code != 0 || !strings.Contains(out, "v1.32.4") {
		t.Fatalf("kubectl: exit %d\n%s\n%s", code, out, stderr)
	}
}

// TestKubectlClusterExtension uses the one-user-for-many-clusters kubeconfig: the
// tenant and scope come from the cluster's exec extension, and a flag wins over it.
func TestKubectlClusterExtension(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	customer := newKubeAPI(t, e.Sim, entrasim.CustomerTenantID)
	kc := writeFile(t, "kubeconfig", kubeconfigRecipe(t, "kubeconfig-extension", customer))
	out, stderr, code := e.kubectl(t, nil, "--kubeconfig", kc, "get", "--raw", "/version")
	if code != 0 || !strings.Contains(out, "v1.32.4") {
		t.Fatalf("kubectl: exit %d\n%s\n%s", code, out, stderr)
	}
	if _, ref := customer.counts(); ref != 0 {
		t.Fatalf("the customer's API server refused: %v", customer.refused)
	}

	// A flag in args wins over the extension: the token is for the home tenant, so
	// the customer's cluster refuses it and the home tenant's cluster takes it.
	home := newKubeAPI(t, e.Sim, entrasim.HomeTenantID)
	withFlag := strings.Replace(kubeconfigRecipe(t, "kubeconfig-extension", home),
		"args: [exec-credential]", "args: [exec-credential, --tenant, "+entrasim.HomeTenantDomain+"]", 1)
	kc2 := writeFile(t, "kubeconfig", withFlag)
	if out, stderr, code := e.kubectl(t, nil, "--kubeconfig", kc2, "get", "--raw", "/version"); code != 0 {
		t.Fatalf("kubectl with --tenant: exit %d\n%s\n%s", code, out, stderr)
	}
	if acc, ref := home.counts(); acc == 0 || ref != 0 {
		t.Fatalf("home API server: %d accepted, refused %v", acc, home.refused)
	}
}

// restClient is client-go's HTTP client for a kubeconfig, with the exec
// authenticator kubectl uses. A marker variable keeps client-go's process-wide cache
// of authenticators from sharing one between tests.
func restClient(t *testing.T, kubeconfig string, mutate func(*clientcmdapi.ExecConfig)) *http.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ExecProvider == nil {
		t.Fatal("the kubeconfig has no exec provider")
	}
	cfg.ExecProvider.Env = append(cfg.ExecProvider.Env, clientcmdapi.ExecEnvVar{Name: "CONSUMERS_TEST", Value: t.Name()})
	if mutate != nil {
		mutate(cfg.ExecProvider)
	}
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func getVersion(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url + "/version")
	if err != nil {
		t.Fatalf("GET /version: %v", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// setProcessEnv makes the consumer environment of e the test process's own, for
// in-process consumers (client-go, azidentity) that pass os.Environ to the programs
// they run. Not for parallel tests.
func (e *env) setProcessEnv(t *testing.T) {
	for _, kv := range e.environ() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// TestClientGoExecAuthenticator has client-go's exec authenticator run the helper
// with the documented kubeconfigs, in both apiVersions.
func TestClientGoExecAuthenticator(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	e.setProcessEnv(t)
	for _, name := range []string{"kubeconfig", "kubeconfig-extension"} {
		for _, api := range []string{"client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"} {
			t.Run(name+"/"+api[strings.LastIndex(api, "/")+1:], func(t *testing.T) {
				k := newKubeAPI(t, e.Sim, entrasim.CustomerTenantID)
				kc := writeFile(t, "kubeconfig", kubeconfigRecipe(t, name, k))
				c := restClient(t, kc, func(ec *clientcmdapi.ExecConfig) { ec.APIVersion = api })
				if code := getVersion(t, c, k.URL); code != 200 {
					t.Fatalf("GET /version: %d; refused: %v", code, k.refused)
				}
				// The second request reuses client-go's in-memory token.
				if code := getVersion(t, c, k.URL); code != 200 {
					t.Fatalf("second GET /version: %d", code)
				}
				if acc, ref := k.counts(); acc != 2 || ref != 0 {
					t.Fatalf("accepted %d, refused %v", acc, k.refused)
				}
			})
		}
	}
}

// TestClientGoRenewsAtExpiry: client-go runs the plugin again only once
// expirationTimestamp has passed; the helper must then hand out a new token, so that
// the API server never sees an expired one.
func TestClientGoRenewsAtExpiry(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	e.setProcessEnv(t)
	e.Sim.SetTokenLifetime(5 * time.Second)
	k := newKubeAPI(t, e.Sim, entrasim.CustomerTenantID)
	c := restClient(t, writeFile(t, "kubeconfig", kubeconfigRecipe(t, "kubeconfig", k)), nil)
	if code := getVersion(t, c, k.URL); code != 200 {
		t.Fatalf("GET /version: %d; refused %v", code, k.refused)
	}
	first := k.lastAccepted()
	claims, _ := e.Sim.ValidateAccessToken(first)
	time.Sleep(time.Until(claims.ExpiresAt) + 1500*time.Millisecond)
	if code := getVersion(t, c, k.URL); code != 200 {
		t.Fatalf("GET /version after expiry: %d; refused %v", code, k.refused)
	}
	if k.lastAccepted() == first {
		t.Fatal("client-go sent the expired token again")
	}
	if _, ref := k.counts(); ref != 0 {
		t.Fatalf("the API server refused %v: client-go should have renewed before sending", k.refused)
	}
}

// execInfo is the KUBERNETES_EXEC_INFO kubectl sends.
func execInfo(api string, interactive bool, config string) string {
	cluster := ""
	if config != "" {
		cluster = `,"cluster":{"server":"https://127.0.0.1:6443","config":` + config + `}`
	}
	return fmt.Sprintf(`{"kind":"ExecCredential","apiVersion":%q,"spec":{"interactive":%t%s}}`, api, interactive, cluster)
}

// TestExecCredentialProtocol speaks the plugin protocol directly: the answer's
// apiVersion follows the request (v1 when absent), expirationTimestamp is the token's
// expiry, and malformed input is exit 2.
func TestExecCredentialProtocol(t *testing.T) {
	e := newEnv(t)
	e.Consent()
	for _, tt := range []struct{ info, want string }{
		{"", "client.authentication.k8s.io/v1"},
		{execInfo("client.authentication.k8s.io/v1", false, ""), "client.authentication.k8s.io/v1"},
		{execInfo("client.authentication.k8s.io/v1beta1", false, ""), "client.authentication.k8s.io/v1beta1"},
		{execInfo("client.authentication.k8s.io/v1beta1", true, `{"tenant":"`+entrasim.CustomerTenantDomain+`","scopes":"aks"}`), "client.authentication.k8s.io/v1beta1"},
	} {
		e.Vars["KUBERNETES_EXEC_INFO"] = tt.info
		res := e.MustRun("exec-credential", "--scope", "aks")
		var cred struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Status     struct {
				Token               string `json:"token"`
				ExpirationTimestamp string `json:"expirationTimestamp"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &cred); err != nil {
			t.Fatalf("answer is not JSON: %v\n%s", err, res.Stdout)
		}
		if cred.APIVersion != tt.want || cred.Kind != "ExecCredential" {
			t.Errorf("info %s: answered %s %s", tt.info, cred.APIVersion, cred.Kind)
		}
		claims, err := e.Sim.ValidateAccessToken(cred.Status.Token)
		if err != nil || claims.Audience != aksServerApp {
			t.Fatalf("token: %v, audience %q", err, claims.Audience)
		}
		exp, err := time.Parse(time.RFC3339, cred.Status.ExpirationTimestamp)
		if err != nil || !exp.Equal(claims.ExpiresAt) {
			t.Errorf("expirationTimestamp %q, token expires %v", cred.Status.ExpirationTimestamp, claims.ExpiresAt)
		}
		if strings.Contains(tt.info, "tenant") && claims.TenantID != entrasim.CustomerTenantID {
			t.Errorf("the cluster's tenant was ignored: token of %s", claims.TenantID)
		}
	}
	for _, bad := range []string{"{", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}`} {
		e.Vars["KUBERNETES_EXEC_INFO"] = bad
		if res := e.Run("exec-credential", "--scope", "aks"); res.Code != 2 || res.Stdout != "" {
			t.Errorf("KUBERNETES_EXEC_INFO %s: exit %d, stdout %q; want 2 and nothing", bad, res.Code, res.Stdout)
		}
	}
}

// TestKubectlWithoutConsent: kubectl shows the helper's message and remedy, and the
// exit code says consent is needed.
func TestKubectlWithoutConsent(t *testing.T) {
	e := newEnv(t)
	k := newKubeAPI(t, e.Sim, entrasim.CustomerTenantID)
	kc := writeFile(t, "kubeconfig", kubeconfigRecipe(t, "kubeconfig", k))
	_, stderr, code := e.kubectl(t, nil, "--kubeconfig", kc, "get", "--raw", "/version")
	if code == 0 {
		t.Fatal("kubectl succeeded without consent")
	}
	t.Logf("kubectl said:\n%s", stderr)
	for _, want := range []string{"hint: pctoken-helper consent --profile contoso", "exit code 3"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("kubectl's stderr lacks %q:\n%s", want, stderr)
		}
	}
	if acc, ref := k.counts(); acc+ref != 0 {
		t.Errorf("kubectl reached the API server %d times without a token", acc+ref)
	}
}

// TestKubectlInteractiveModes runs kubectl from a terminal with the file store's
// passphrase unset. With interactiveMode Never the helper must not touch the
// terminal and must fail at once; with IfAvailable it asks on the terminal, and the
// passphrase typed there unlocks the store.
func TestKubectlInteractiveModes(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl is not on PATH")
	}
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	delete(e.Vars, "PCTOKEN_FILE_PASSPHRASE")
	k := newKubeAPI(t, e.Sim, entrasim.CustomerTenantID)
	never := kubeconfigRecipe(t, "kubeconfig", k)
	if !strings.Contains(never, "interactiveMode: Never") {
		t.Fatal("the kubeconfig recipe is not interactiveMode: Never")
	}

	t.Run("Never", func(t *testing.T) {
		p := testpty.Open(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := e.command(ctx, nil, "kubectl", "--kubeconfig", writeFile(t, "kc", never), "get", "--raw", "/version")
		p.Attach(cmd, true)
		start := time.Now()
		_, stderr, code := run(t, cmd, "")
		if code == 0 {
			t.Fatal("kubectl succeeded without the passphrase")
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("kubectl took %v to fail: the helper waited for someone", d)
		}
		for _, want := range []string{"PCTOKEN_FILE_PASSPHRASE", "exit code 5"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		p.Master.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if b, _ := io.ReadAll(p.Master); len(b) > 0 {
			t.Errorf("the helper wrote to the terminal: %q", b)
		}
	})

	t.Run("IfAvailable", func(t *testing.T) {
		p := testpty.Open(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kc := strings.Replace(never, "interactiveMode: Never", "interactiveMode: IfAvailable", 1)
		cmd := e.command(ctx, nil, "kubectl", "--kubeconfig", writeFile(t, "kc", kc), "get", "--raw", "/version")
		p.Attach(cmd, true)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		prompt := readUntil(t, p, "Passphrase", 30*time.Second)
		if strings.Contains(out.String(), "Passphrase") {
			t.Errorf("the prompt went to stdout")
		}
		io.WriteString(p.Master, "harness-file-store-passphrase\n")
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("kubectl: %v (prompt %q)\n%s", err, prompt, errb.String())
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-done
			t.Fatal("kubectl did not finish after the passphrase was typed")
		}
		if !strings.Contains(out.String(), "v1.32.4") {
			t.Fatalf("kubectl printed %q", out.String())
		}
	})
}

// readUntil reads the terminal until want appears.
func readUntil(t *testing.T, p *testpty.PTY, want string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	var seen []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(seen), want) {
		p.Master.SetReadDeadline(deadline)
		n, err := p.Master.Read(buf)
		seen = append(seen, buf[:n]...)
		if err != nil {
			t.Fatalf("terminal showed %q, waiting for %q: %v", seen, want, err)
		}
	}
	return string(seen)
}
