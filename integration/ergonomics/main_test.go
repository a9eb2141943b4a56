// Package ergonomics tests the everyday commands through the real binary: profile
// list and show, doctor, setup git and setup kubeconfig (with the real git and
// kubectl), and shell completion (in a real bash).
package ergonomics

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// env is a harness environment whose PATH starts with the helper's folder, so that
// the helper is "pctoken-helper" to git, kubectl and bash, as the docs assume.
type env struct {
	*harness.Env
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{harness.New(t)}
	e.Vars["PATH"] = filepath.Dir(e.Bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	return e
}

// environ is the environment of a process of e, with extra "K=V" entries winning.
func (e *env) environ(extra ...string) []string {
	vars := map[string]string{}
	for k, v := range e.Vars {
		vars[k] = v
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var out []string
	for k, v := range vars {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// program runs name (looked up on PATH) with args in e's environment, in a temp
// folder, and returns stdout, stderr and the exit code.
func (e *env) program(t *testing.T, stdin string, extraEnv []string, name string, args ...string) (string, string, int) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not on PATH", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = e.environ(extraEnv...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after 90s\n%s", name, args, errb.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
}

// noSecret fails the test if any output holds the passphrase or something shaped
// like the simulator's refresh tokens ("0.AAAA" and 256 more characters).
func noSecret(t *testing.T, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if strings.Contains(o, harness.Passphrase) || strings.Contains(o, "0.AAAA") {
			t.Fatalf("a secret was printed:\n%s", o)
		}
	}
}

// recipe is the fenced block after the marker <!-- test: name --> in docs/page, so
// that the tests run what the docs tell people to run.
func recipe(t *testing.T, page, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	doc, marker := string(b), "<!-- test: "+name+" -->"
	if n := strings.Count(doc, marker); n != 1 {
		t.Fatalf("docs/%s has %d markers %q, want 1", page, n, marker)
	}
	rest := strings.TrimLeft(doc[strings.Index(doc, marker)+len(marker):], "\n")
	if !strings.HasPrefix(rest, "```") {
		t.Fatalf("docs/%s: no fenced block right after %q", page, marker)
	}
	_, body, _ := strings.Cut(rest, "\n")
	body, _, ok := strings.Cut(body, "\n```")
	if !ok {
		t.Fatalf("docs/%s: the block after %q never ends", page, marker)
	}
	return body + "\n"
}
