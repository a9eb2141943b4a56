package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

var fenceRe = regexp.MustCompile("(?s)^\\s*```[A-Za-z0-9_-]*[^\\n]*\\n(.*?)\\n\\s*```")

// recipe returns the fenced block after <!-- test: name --> in docs/tenants.md.
func recipe(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", "tenants.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc, marker := string(b), "<!-- test: "+name+" -->"
	if strings.Count(doc, marker) != 1 {
		t.Fatalf("docs/tenants.md: want one %q", marker)
	}
	m := fenceRe.FindStringSubmatch(doc[strings.Index(doc, marker)+len(marker):])
	if m == nil {
		t.Fatalf("no fenced block after %q", marker)
	}
	return m[1] + "\n"
}

// runRecipe runs a recipe with sh, the helper on PATH, in a temporary folder.
func runRecipe(t *testing.T, e *harness.Env, script string) (dir, stdout, stderr string, code int) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq is not installed (.ci/run installs it)")
	}
	dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(e.Environ(), "PATH="+filepath.Dir(e.Bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return dir, out.String(), errb.String(), code
}

func TestRecipeFanOut(t *testing.T) {
	e := newEnv(t)
	run(t, e, "", "consent", "--flow", "device-code", "--profile", "contoso").mustCode(t, 0)
	addClassWorld(e.Sim)
	_, out, errOut, code := runRecipe(t, e, recipe(t, "fan-out"))
	if code != 0 {
		t.Fatalf("recipe: exit %d\n%s", code, errOut)
	}
	if got := strings.Fields(out); len(got) != 1 || got[0] != customerID(0) {
		t.Errorf("tenants with a token: %q, want only %s", got, customerID(0))
	}
	if !strings.Contains(errOut, "AADSTS50020") || !strings.Contains(errOut, "AADSTS53003") {
		t.Errorf("the failures are not listed: %s", errOut)
	}
}

func TestRecipeNightlyCheck(t *testing.T) {
	e := newEnv(t)
	run(t, e, "", "consent", "--flow", "device-code", "--profile", "contoso").mustCode(t, 0)
	addClassWorld(e.Sim)
	dir, out, errOut, code := runRecipe(t, e, recipe(t, "nightly-check"))
	if code != 5 {
		t.Fatalf("recipe: exit %d, want 5 (the first failing row, by name, is app_unknown)\n%s", code, errOut)
	}
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != len(classWorld)-1 {
		t.Errorf("%d failing lines, want %d:\n%s", n, len(classWorld)-1, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "check-today.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep checkReport
	if err := json.Unmarshal(b, &rep); err != nil || rep.Profile != "contoso" || rep.OK != 1 {
		t.Errorf("check-today.json: %v %+v", err, rep)
	}
}
