//go:build unix

package cache

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFolderNamesTheFolder(t *testing.T) {
	dir := t.TempDir()
	if err := CheckFolder("config folder", "--config-dir", dir); err != nil {
		t.Fatalf("a 0700 folder: %v", err)
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	err := CheckFolder("config folder", "--config-dir", dir)
	if err == nil || !strings.HasPrefix(err.Error(), "config folder "+dir+" is writable") || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("a 0770 folder: %v", err)
	}
	if err := CheckFolder("config folder", "--config-dir", filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing folder: %v", err)
	}
}
