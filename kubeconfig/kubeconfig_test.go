package kubeconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// sample is what `az aks get-credentials` leaves: a kubelogin exec user, plus a second
// cluster and user that must stay as they are.
const sample = `apiVersion: v1
kind: Config
# clusters of the fleet
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://fabrikam.hcp.westeurope.azmk8s.io:443
  name: fabrikam-aks
- cluster:
    server: https://other.example:6443
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
preferences: {}
users:
- name: clusterUser_rg_fabrikam-aks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - get-token
      - --server-id
      - 6dae42f8-4368-4678-94ff-3960e28e3630
      command: kubelogin
      env: null
      installHint: install kubelogin
      provideClusterInfo: false
- name: other-admin
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
`

var helper = Exec{Command: "pctoken-helper", Args: []string{"exec-credential", "--profile", "contoso", "--scope", "6dae42f8-4368-4678-94ff-3960e28e3630/.default"}}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("result is not YAML: %v\n%s", err, b)
	}
	return m
}

func userOf(t *testing.T, m map[string]any, name string) map[string]any {
	t.Helper()
	for _, u := range m["users"].([]any) {
		u := u.(map[string]any)
		if u["name"] == name {
			return u["user"].(map[string]any)
		}
	}
	t.Fatalf("no user %s", name)
	return nil
}

func TestConvertCurrentContext(t *testing.T) {
	out, user, err := Convert([]byte(sample), Selector{}, helper)
	if err != nil {
		t.Fatal(err)
	}
	if user != "clusterUser_rg_fabrikam-aks" {
		t.Fatalf("converted %s", user)
	}
	m := decode(t, out)
	exec := userOf(t, m, user)["exec"].(map[string]any)
	if exec["command"] != "pctoken-helper" || exec["apiVersion"] != APIVersion || exec["interactiveMode"] != "Never" {
		t.Fatalf("exec = %v", exec)
	}
	if _, ok := exec["installHint"]; ok {
		t.Fatal("kubelogin's exec fields survived")
	}
	args := exec["args"].([]any)
	if len(args) != len(helper.Args) || args[len(args)-1] != helper.Args[len(helper.Args)-1] {
		t.Fatalf("args = %v", args)
	}
	other := userOf(t, m, "other-admin")
	if other["client-certificate-data"] != "Q0VSVAo=" || other["exec"] != nil {
		t.Fatalf("the other user changed: %v", other)
	}
	if len(m["clusters"].([]any)) != 2 || m["current-context"] != "fabrikam-aks" || m["preferences"] == nil {
		t.Fatalf("other fields changed: %v", m)
	}
	if !strings.Contains(string(out), "# clusters of the fleet") {
		t.Fatal("the comment was lost")
	}
	if !strings.Contains(string(out), "\nusers:\n- name:") {
		t.Fatalf("sequences are not laid out as kubectl writes them:\n%s", out)
	}
	again, _, err := Convert(out, Selector{}, helper)
	if err != nil || string(again) != string(out) {
		t.Fatalf("second conversion changed the file:\n%s\n---\n%s", out, again)
	}
}

func TestConvertByContextAndUser(t *testing.T) {
	out, user, err := Convert([]byte(sample), Selector{Context: "other"}, helper)
	if err != nil || user != "other-admin" {
		t.Fatalf("user %s, err %v", user, err)
	}
	u := userOf(t, decode(t, out), "other-admin")
	if u["exec"] == nil || u["client-certificate-data"] != "Q0VSVAo=" {
		t.Fatalf("user = %v", u)
	}
	if _, _, err := Convert([]byte(sample), Selector{User: "nobody"}, helper); err == nil || !strings.Contains(err.Error(), "clusterUser_rg_fabrikam-aks, other-admin") {
		t.Fatalf("unknown user: %v", err)
	}
	if _, _, err := Convert([]byte(sample), Selector{Context: "nope"}, helper); err == nil || !strings.Contains(err.Error(), "fabrikam-aks, other") {
		t.Fatalf("unknown context: %v", err)
	}
	if _, _, err := Convert([]byte(sample), Selector{Context: "a", User: "b"}, helper); err == nil {
		t.Fatal("both --context and --user accepted")
	}
}

func TestConvertAddsAMissingUser(t *testing.T) {
	doc := "apiVersion: v1\nkind: Config\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\ncurrent-context: c\nusers: null\n"
	out, user, err := Convert([]byte(doc), Selector{}, helper)
	if err != nil || user != "u" {
		t.Fatalf("user %s, err %v", user, err)
	}
	if userOf(t, decode(t, out), "u")["exec"] == nil {
		t.Fatalf("no exec:\n%s", out)
	}
}

func TestConvertRefusesOtherDocuments(t *testing.T) {
	for _, doc := range []string{"", "- a\n- b\n", "users: 3\ncurrent-context: c\ncontexts:\n- name: c\n  context: {user: u}\n", "{{{"} {
		if _, _, err := Convert([]byte(doc), Selector{}, helper); err == nil {
			t.Errorf("accepted %q", doc)
		}
	}
}

func TestPath(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "b")
	os.WriteFile(exists, nil, 0o600)
	missing := filepath.Join(dir, "a")
	for _, tt := range []struct{ flag, env, home, want string }{
		{"/f", missing + ":" + exists, "/h", "/f"},
		{"", missing + string(filepath.ListSeparator) + exists, "/h", exists},
		{"", missing, "/h", missing},
		{"", "", "/h", filepath.Join("/h", ".kube", "config")},
	} {
		if got, err := Path(tt.flag, tt.env, tt.home); err != nil || got != tt.want {
			t.Errorf("Path(%q, %q, %q) = %q, %v; want %q", tt.flag, tt.env, tt.home, got, err, tt.want)
		}
	}
}

func TestWriteAtomicKeepsModeAndFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "config")
	os.WriteFile(target, []byte("old"), 0o640)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Skip(err)
	}
	if err := WriteAtomic(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(target)
	fi, _ := os.Stat(target)
	li, _ := os.Lstat(link)
	if string(b) != "new" || fi.Mode().Perm() != 0o640 || li.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("content %q, mode %v, link mode %v", b, fi.Mode().Perm(), li.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("left behind: %v", entries)
	}
}

func FuzzConvert(f *testing.F) {
	f.Add([]byte(sample), "", "")
	f.Add([]byte("users: null\ncurrent-context: x\n"), "x", "")
	f.Add([]byte("a: &a [*a]\n"), "", "u")
	f.Fuzz(func(t *testing.T, doc []byte, ctx, user string) {
		if len(doc) > 1<<16 {
			return
		}
		out, name, err := Convert(doc, Selector{Context: ctx, User: user}, helper)
		if err != nil {
			return
		}
		again, name2, err := Convert(out, Selector{User: name}, helper)
		if err != nil || name2 != name {
			t.Fatalf("converted output does not convert again: %v", err)
		}
		if string(again) != string(out) {
			t.Fatalf("not idempotent:\n%s\n---\n%s", out, again)
		}
	})
}

func TestErrorsShowNamesCleanAndBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nusers:\n")
	for i := range 30 {
		fmt.Fprintf(&b, "- name: \"u%d\\x1b[31m\"\n  user: {}\n", i)
	}
	_, _, err := Convert([]byte(b.String()), Selector{User: "x\x07" + strings.Repeat("y", 200)}, helper)
	if err == nil {
		t.Fatal("an unknown user was accepted")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\x1b\x07") || !strings.Contains(msg, "and 10 more") || len(msg) > 1000 {
		t.Fatalf("message: %q", msg)
	}
}
