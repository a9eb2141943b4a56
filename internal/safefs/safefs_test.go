//go:build unix

package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func unsafe(t *testing.T, err error, path string) {
	t.Helper()
	var u *UnsafeError
	if !errors.As(err, &u) {
		t.Fatalf("err = %v, want an UnsafeError about %s", err, path)
	}
	if u.Path != path {
		t.Fatalf("the error names %s, want %s (%v)", u.Path, path, err)
	}
	if strings.Contains(u.Remedy, "chmod 7") || strings.Contains(u.Remedy, "/tmp ") {
		t.Fatalf("unsafe remedy: %s", u.Remedy)
	}
}

func TestCheckDir(t *testing.T) {
	root := t.TempDir()
	own := filepath.Join(root, "own")
	if _, err := EnsureDir(own); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(own); fi.Mode().Perm() != 0o700 {
		t.Fatalf("EnsureDir made %v", fi.Mode())
	}
	// A folder others can write.
	os.Chmod(own, 0o770)
	_, err := CheckDir(own)
	unsafe(t, err, own)
	if RemedyOf(err) != "run chmod go-w "+own {
		t.Fatalf("remedy: %v", err)
	}
	os.Chmod(own, 0o700)

	// A non-sticky world-writable parent: the folder could be swapped.
	shared := filepath.Join(root, "shared")
	os.Mkdir(shared, 0o700)
	os.Chmod(shared, 0o777)
	inside := filepath.Join(shared, "pctoken-helper")
	os.Mkdir(inside, 0o700)
	_, err = CheckDir(inside)
	unsafe(t, err, shared)
	// Sticky, as /tmp: fine.
	os.Chmod(shared, 0o777|fs.ModeSticky)
	passed.m = map[string]bool{}
	if _, err := CheckDir(inside); err != nil {
		t.Fatalf("a folder in a sticky shared folder: %v", err)
	}

	// Through a symbolic link: the error names the real folder.
	link := filepath.Join(root, "link")
	os.Symlink(own, link)
	os.Chmod(own, 0o757)
	_, err = CheckDir(filepath.Join(link, "."))
	unsafe(t, err, own)
	os.Chmod(own, 0o700)
	if real, err := CheckDir(link); err != nil || real != own {
		t.Fatalf("CheckDir(link) = %q, %v", real, err)
	}
	// A relative link through a bad folder.
	bad := filepath.Join(root, "bad")
	os.Mkdir(bad, 0o700)
	os.Chmod(bad, 0o777)
	os.Mkdir(filepath.Join(bad, "x"), 0o700)
	os.Symlink("bad/x", filepath.Join(root, "rel"))
	passed.m = map[string]bool{}
	_, err = CheckDir(filepath.Join(root, "rel"))
	unsafe(t, err, bad)

	if _, err := CheckDir(filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing folder: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: ownership cases skipped")
		return
	}
	theirs := filepath.Join(root, "theirs")
	os.Mkdir(theirs, 0o700)
	os.Chown(theirs, 65534, 65534)
	_, err = CheckDir(theirs)
	unsafe(t, err, theirs)
	os.Mkdir(filepath.Join(theirs, "mine"), 0o700)
	passed.m = map[string]bool{}
	_, err = CheckDir(filepath.Join(theirs, "mine"))
	unsafe(t, err, theirs)
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	os.WriteFile(p, []byte("{}"), 0o600)
	if b, err := ReadFile(p, 10); err != nil || string(b) != "{}" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if _, err := ReadFile(p, 1); err == nil {
		t.Fatal("a file over the limit was read")
	}
	os.Chmod(p, 0o666)
	_, err := ReadFile(p, 10)
	unsafe(t, err, p)
	os.Chmod(p, 0o600)
	l := filepath.Join(dir, "l.json")
	os.Symlink(p, l)
	_, err = ReadFile(l, 10)
	unsafe(t, err, l)
	fifo := filepath.Join(dir, "fifo.json")
	syscall.Mkfifo(fifo, 0o600)
	done := make(chan error, 1)
	go func() { _, err := ReadFile(fifo, 10); done <- err }()
	select {
	case err := <-done:
		unsafe(t, err, fifo)
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile hangs on a FIFO")
	}
	if err := CheckReplace(filepath.Join(dir, "new.json")); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(p, 65534, 65534)
		_, err = ReadFile(p, 10)
		unsafe(t, err, p)
		unsafe(t, CheckReplace(p), p)
	}
}
