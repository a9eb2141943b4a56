package mi

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var fenceRe = regexp.MustCompile("(?s)^\\s*```[A-Za-z0-9_-]*[^\\n]*\\n(.*?)\\n\\s*```")

// recipe returns the fenced block after <!-- test: name --> in docs/managed-identity.md.
func recipe(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "managed-identity.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc, marker := string(b), "<!-- test: "+name+" -->"
	if n := strings.Count(doc, marker); n != 1 {
		t.Fatalf("docs/managed-identity.md has %d markers %q, want 1", n, marker)
	}
	m := fenceRe.FindStringSubmatch(doc[strings.Index(doc, marker)+len(marker):])
	if m == nil {
		t.Fatalf("no fenced block after %q", marker)
	}
	return m[1] + "\n"
}

// TestServeEvalRecipe runs the docs' eval "$(pctoken-helper mi serve &)" recipe in sh:
// the shell gets the variables, a request with them gets a token, and the trap stops
// the endpoint when the shell exits.
func TestServeEvalRecipe(t *testing.T) {
	e := newEnv(t)
	// The test binary makes the request (no curl on every machine); the shell passes
	// the exported variables to it.
	script := recipe(t, "mi-serve-eval") + `"$MI_SELF" || exit 1
printf '%s\n%s\n%s\n' "$IDENTITY_ENDPOINT" "$PCTOKEN_MI_PID" "${MSI_ENDPOINT-unset}"
`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Env = append(e.Environ(), "PATH="+filepath.Dir(e.Bin)+":"+os.Getenv("PATH"), childVar+"=request", "MI_SELF="+self(t), "MSI_ENDPOINT=http://old")
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("recipe: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "http://127.0.0.1:") || lines[2] != "unset" {
		t.Fatalf("the shell saw %q", lines)
	}
	if st := e.Sim.Stats(); st.Grants["refresh_token"] != 1 {
		t.Errorf("the request through the exported variables caused %d redemptions, want 1", st.Grants["refresh_token"])
	}
	pid, err := strconv.Atoi(lines[1])
	if err != nil {
		t.Fatalf("PCTOKEN_MI_PID %q", lines[1])
	}
	// The trap killed it; wait for it to go (it is not our child, so poll).
	for deadline := time.Now().Add(30 * time.Second); running(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("mi serve (pid %d) still runs after the shell exited", pid)
		}
	}
	if resp, err := http.Get(lines[0]); err == nil {
		resp.Body.Close()
		t.Errorf("the endpoint still answers after the shell exited")
	}
}

// running: the process exists and is not a zombie (an orphan is reaped by whatever
// runs as PID 1, which in a container may never do it).
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}
