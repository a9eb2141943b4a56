package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestParseExecInfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ExecInfo
	}{
		{"absent", "", ExecInfo{APIVersion: ExecAPIV1}},
		{"v1 as client-go sends it without cluster info",
			`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`,
			ExecInfo{APIVersion: ExecAPIV1}},
		{"v1beta1 interactive",
			`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":true}}`,
			ExecInfo{APIVersion: ExecAPIV1beta1, Interactive: true}},
		{"cluster config with other tools' keys",
			`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://k8s.example:6443","certificate-authority-data":"LS0t","config":{"profile":"contoso","tenant":"fabrikam.onmicrosoft.com","scopes":["a/.default","b"],"audience":["x"],"nested":{"k":1}}},"interactive":false}}`,
			ExecInfo{APIVersion: ExecAPIV1, Cluster: ClusterConfig{Profile: "contoso", Tenant: "fabrikam.onmicrosoft.com", Scopes: []string{"a/.default", "b"}}}},
		{"scopes as one space-separated string",
			`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":{"scopes":" a/.default  b "}}}}`,
			ExecInfo{APIVersion: ExecAPIV1, Cluster: ClusterConfig{Scopes: []string{"a/.default", "b"}}}},
		{"null config",
			`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":null}}}`,
			ExecInfo{APIVersion: ExecAPIV1}},
		{"empty scopes",
			`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":{"scopes":[],"profile":null}}}}`,
			ExecInfo{APIVersion: ExecAPIV1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExecInfo(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseExecInfoErrors(t *testing.T) {
	const v1 = `"apiVersion":"client.authentication.k8s.io/v1"`
	tests := map[string]struct{ in, want string }{
		"bad JSON":            {`{"kind":`, "parse KUBERNETES_EXEC_INFO"},
		"not an object":       {`[1]`, "parse KUBERNETES_EXEC_INFO"},
		"null":                {`null`, `apiVersion ""`},
		"whitespace":          {` `, "parse KUBERNETES_EXEC_INFO"},
		"v1alpha1":            {`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}`, `apiVersion "client.authentication.k8s.io/v1alpha1"`},
		"no apiVersion":       {`{"kind":"ExecCredential"}`, `apiVersion ""`},
		"wrong kind":          {`{"kind":"Pod",` + v1 + `}`, `kind "Pod"`},
		"no kind":             {`{` + v1 + `}`, `kind ""`},
		"interactive string":  {`{"kind":"ExecCredential",` + v1 + `,"spec":{"interactive":"yes"}}`, "parse KUBERNETES_EXEC_INFO"},
		"config not object":   {`{"kind":"ExecCredential",` + v1 + `,"spec":{"cluster":{"config":"x"}}}`, "not a JSON object"},
		"profile number":      {`{"kind":"ExecCredential",` + v1 + `,"spec":{"cluster":{"config":{"profile":1}}}}`, `"profile" must be a string`},
		"tenant list":         {`{"kind":"ExecCredential",` + v1 + `,"spec":{"cluster":{"config":{"tenant":["t"]}}}}`, `"tenant" must be a string`},
		"scopes number":       {`{"kind":"ExecCredential",` + v1 + `,"spec":{"cluster":{"config":{"scopes":5}}}}`, `"scopes" must be an array of strings`},
		"scope with a space":  {`{"kind":"ExecCredential",` + v1 + `,"spec":{"cluster":{"config":{"scopes":["a b"]}}}}`, `scope "a b" contains a space`},
		"scopes with a null":  {`{"kind":"ExecCredential",` + v1 + `,"spec":{"cluster":{"config":{"scopes":["a",null]}}}}`, `"scopes" must be an array of strings`},
		"trailing garbage":    {`{"kind":"ExecCredential",` + v1 + `} x`, "parse KUBERNETES_EXEC_INFO"},
		"over the size limit": {`{"kind":"ExecCredential",` + v1 + `,"pad":"` + strings.Repeat("x", MaxExecInfoBytes) + `"}`, "longer than"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseExecInfo(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %+v, %v; want an error containing %q", got, err, tt.want)
			}
		})
	}
}

func TestWriteExecCredentialGolden(t *testing.T) {
	exp := time.Date(2025, 3, 14, 15, 9, 26, 999_000_000, time.FixedZone("CET", 3600))
	tests := []struct {
		name, api string
		exp       time.Time
		want      string
	}{
		{"v1", ExecAPIV1, exp,
			`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok","expirationTimestamp":"2025-03-14T14:09:26Z"}}` + "\n"},
		{"v1beta1", ExecAPIV1beta1, exp,
			`{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"tok","expirationTimestamp":"2025-03-14T14:09:26Z"}}` + "\n"},
		{"no expiry", ExecAPIV1, time.Time{},
			`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok"}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteExecCredential(&buf, tt.api, "tok", tt.exp); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), tt.want)
			}
		})
	}
	for _, bad := range []struct{ api, tok string }{
		{"", "tok"}, {"client.authentication.k8s.io/v1alpha1", "tok"}, {ExecAPIV1, ""}, {ExecAPIV1, "a\nb"},
	} {
		var buf bytes.Buffer
		if err := WriteExecCredential(&buf, bad.api, bad.tok, exp); err == nil || buf.Len() != 0 {
			t.Errorf("WriteExecCredential(%q, %q): err %v, wrote %q", bad.api, bad.tok, err, buf.String())
		}
	}
}

// kubeconfigFor writes a kubeconfig whose user runs this test binary as an
// exec plugin, with the cluster extension client-go hands to the plugin.
func kubeconfigFor(t *testing.T, srv *httptest.Server, apiVersion, interactiveMode string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    certificate-authority-data: %s
    extensions:
    - name: client.authentication.k8s.io/exec
      extension:
        profile: contoso
        tenant: fabrikam.onmicrosoft.com
        scopes: [6dae42f8-4368-4678-94ff-3960e28e3630/.default]
        audience: for-another-plugin
users:
- name: u
  user:
    exec:
      apiVersion: %s
      command: %q
      env:
      - name: %s
        value: exec-plugin
      provideClusterInfo: true
      interactiveMode: %s
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`, srv.URL, base64.StdEncoding.EncodeToString(ca), apiVersion, self, roleEnv, interactiveMode)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// authEcho is an HTTPS server that answers with the Authorization header it got.
func authEcho(t *testing.T) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestClientGoRunsPlugin has client-go, as kubectl uses it, run the test binary
// as its exec plugin over real TLS: client-go must accept the answer in either
// apiVersion and send its token, and the plugin must have read the cluster
// extension and interactive flag from KUBERNETES_EXEC_INFO.
func TestClientGoRunsPlugin(t *testing.T) {
	const scope = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
	for _, tt := range []struct{ api, mode, interactive string }{
		{ExecAPIV1, "Never", "false"},
		// "Always" would need a terminal on stdin; interactive=true is
		// covered by TestParseExecInfo.
		{ExecAPIV1beta1, "IfAvailable", "false"},
	} {
		t.Run(tt.api, func(t *testing.T) {
			srv := authEcho(t)
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfigFor(t, srv, tt.api, tt.mode))
			if err != nil {
				t.Fatal(err)
			}
			client, err := rest.HTTPClientFor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Get(srv.URL + "/version")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			want := "Bearer " + strings.Join([]string{tt.api, tt.interactive, "contoso", "fabrikam.onmicrosoft.com", scope}, "|")
			if string(got) != want {
				t.Errorf("server saw %q, want %q", got, want)
			}
		})
	}
}

// TestKubectlRunsPlugin does the same with the kubectl binary on PATH.
func TestKubectlRunsPlugin(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	srv := authEcho(t)
	cmd := exec.Command(kubectl, "--kubeconfig", kubeconfigFor(t, srv, ExecAPIV1, "IfAvailable"), "get", "--raw", "/version")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl: %v\n%s", err, out)
	}
	want := "Bearer " + ExecAPIV1 + "|false|contoso|fabrikam.onmicrosoft.com|6dae42f8-4368-4678-94ff-3960e28e3630/.default"
	if string(out) != want {
		t.Errorf("kubectl printed %q, want %q", out, want)
	}
}
