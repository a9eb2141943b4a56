// Package keyvault tests the azure-keyvault store end to end: the real binary on
// several "machines" (separate homes, caches and configs) sharing one simulated vault
// (kvsim) reached through a CONNECT proxy (tlsproxy), with tokens from the Entra ID
// simulator, the real azsecrets client and azidentity's environment credential.
package keyvault

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/integration/kvsim"
	"github.com/pctoken/pctoken-helper/integration/tlsproxy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// Identities of the vault (service principals of the simulated tenant).
const (
	writerID     = entrasim.ConfidentialClientID // Key Vault Secrets Officer
	writerSecret = entrasim.ClientSecret
	readerID     = "0f1e2d3c-0000-4000-8000-0000000000e1" // Key Vault Secrets User
	readerSecret = "reader-test-only-secret"
	strangerID   = "0f1e2d3c-0000-4000-8000-0000000000e2" // no role
	strangerPass = "stranger-test-only-secret"

	vaultName  = "contoso-sam"
	secretName = "partner-refresh-token"
)

// world is one identity provider, one vault and the proxy, shared by machines.
type world struct {
	t      *testing.T
	dir    string
	entra  *entrasim.Sim
	vault  *kvsim.Sim
	proxy  *tlsproxy.Proxy
	bundle string
	skew   atomic.Int64 // the simulators' clock offset
	n      int
}

func (w *world) now() time.Time { return time.Now().Add(time.Duration(w.skew.Load())) }

// advance moves both simulators' clocks.
func (w *world) advance(d time.Duration) { w.skew.Add(int64(d)) }

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	var err error
	if w.entra, err = entrasim.Start(entrasim.Options{Dir: filepath.Join(w.dir, "entra"), Now: w.now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.entra.Close() })
	w.entra.AddClient(entrasim.Client{ID: readerID, Secret: readerSecret})
	w.entra.AddClient(entrasim.Client{ID: strangerID, Secret: strangerPass})
	if w.vault, err = kvsim.Start(kvsim.Options{Entra: w.entra, Dir: filepath.Join(w.dir, "vault"), Now: w.now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.vault.Close() })
	w.vault.Grant(writerID, kvsim.Write)
	w.vault.Grant(readerID, kvsim.Read)
	if w.proxy, err = tlsproxy.Start(tlsproxy.Route{Pattern: "*.vault.azure.net:443", Target: w.vault.Addr()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.proxy.Close() })
	var pem []byte
	for _, f := range []string{w.entra.CAFile(), w.vault.CAFile()} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pem = append(pem, b...)
	}
	w.bundle = filepath.Join(w.dir, "ca-bundle.pem")
	if err := os.WriteFile(w.bundle, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func secretURL() string { return kvsim.SecretURL(vaultName, secretName) }

// machine is one host of the fleet: its own home, config and cache; the vault's
// identity in the environment, as a service principal would have it.
func (w *world) machine(vaultClient, vaultSecret string) *harness.Env {
	w.t.Helper()
	w.n++
	dir := filepath.Join(w.dir, "m"+strconv.Itoa(w.n))
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		w.t.Fatal(err)
	}
	return &harness.Env{T: w.t, Sim: w.entra, Bin: harness.Binary(w.t), Dir: dir, Vars: map[string]string{
		"HOME":                     home,
		"XDG_CONFIG_HOME":          filepath.Join(home, ".config"),
		"XDG_CACHE_HOME":           filepath.Join(home, ".cache"),
		"SSL_CERT_FILE":            w.bundle,
		"HTTPS_PROXY":              w.proxy.URL(),
		"NO_PROXY":                 "127.0.0.1,localhost",
		"PCTOKEN_AUTHORITY_HOST":   w.entra.URL(),
		"PCTOKEN_CLIENT_ID":        entrasim.PublicClientID,
		"PCTOKEN_STORE":            "azure-keyvault",
		"PCTOKEN_KEYVAULT_SECRET":  secretURL(),
		"PCTOKEN_KEYVAULT_AUTH":    "environment",
		"AZURE_TENANT_ID":          entrasim.HomeTenantID,
		"AZURE_CLIENT_ID":          vaultClient,
		"AZURE_CLIENT_SECRET":      vaultSecret,
		"AZURE_AUTHORITY_HOST":     w.entra.URL(),
		"DBUS_SESSION_BUS_ADDRESS": "",
	}}
}

func wantExit(t *testing.T, res harness.Result, code int, what string) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, res.Code, code, res.Stdout, res.Stderr)
	}
}

func wantStderr(t *testing.T, res harness.Result, what string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(res.Stderr, p) {
			t.Fatalf("%s: stderr lacks %q:\n%s", what, p, res.Stderr)
		}
	}
}

// latestValid checks the vault's newest version holds a refresh token Entra accepts.
func (w *world) latestValid(t *testing.T) kvsim.Version {
	t.Helper()
	v, ok := w.vault.Latest(vaultName, secretName)
	if !ok {
		t.Fatal("the vault holds no version")
	}
	if !w.entra.RefreshTokenValid(v.Value) {
		t.Fatalf("the vault's newest version %s holds a token Entra refuses", v.ID)
	}
	return v
}

func delta(after, before map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if v-before[k] != 0 {
			d[k] = v - before[k]
		}
	}
	return d
}
