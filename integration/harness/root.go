package harness

import (
	"os"
	"path/filepath"
	"testing"
)

// ModuleRoot is the module's folder, found from a test's own folder (go test runs each
// test in its package's folder, two levels below the root under integration/).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found from the test's folder: %v", err)
	}
	return dir
}
