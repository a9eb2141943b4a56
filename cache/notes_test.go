package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const noteSecret = "0.AQ-test-refresh-token-not-a-real-one" // a test value

func TestFirstNoteOncePerSecretAcrossOpens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	open := func() *Cache {
		c, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := func(c *Cache, topic, secret string) bool {
		t.Helper()
		ok, err := c.FirstNote(topic, secret)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !first(open(), "ci-warning", noteSecret) {
		t.Fatal("the first note is not first")
	}
	// Another Cache on the folder stands for a later process.
	if first(open(), "ci-warning", noteSecret) || first(open(), "ci-warning", noteSecret) {
		t.Fatal("the same note again is first")
	}
	if !first(open(), "ci-warning", noteSecret+"x") {
		t.Fatal("a note about another secret is not first")
	}
	if !first(open(), "other-topic", noteSecret) {
		t.Fatal("a note on another topic is not first")
	}

	// Nothing in the folder holds the secret or its plain hash; files are 0600 in a
	// 0700 folder, the key 32 bytes.
	sum := sha256.Sum256([]byte(noteSecret))
	plain := hex.EncodeToString(sum[:])
	notes := filepath.Join(dir, notesDirName)
	des, err := os.ReadDir(notes)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 4 { // the key and three notes
		t.Fatalf("notes folder holds %d files, want 4", len(des))
	}
	for _, de := range des {
		name := de.Name()
		data, err := os.ReadFile(filepath.Join(notes, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(name+string(data), noteSecret) || strings.Contains(name, plain[:16]) {
			t.Fatalf("%s gives the secret away", name)
		}
		fi, _ := de.Info()
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		if name == noteKeyName && len(data) != noteKeySize {
			t.Errorf("key has %d bytes", len(data))
		}
	}
	if fi, err := os.Stat(notes); err != nil || runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		t.Fatalf("notes folder: %v %v", fi.Mode(), err)
	}
}

// Of many openers asking at once on a fresh folder (so making the key at once too),
// exactly one is first.
func TestFirstNoteExactlyOneOfMany(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(dir)
			if err != nil {
				t.Error(err)
				return
			}
			ok, err := c.FirstNote("ci-warning", noteSecret)
			if err != nil {
				t.Error(err)
			}
			if ok {
				firsts.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Fatalf("%d of 16 were first, want 1", n)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, notesDirName, "*.tmp")); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
}

// A note past its lifetime is removed when a new one is made; so is a killed key
// writer's temp file. The key stays.
func TestFirstNotePrunesOldNotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FirstNote("ci-warning", "old"); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, notesDirName)
	old, _ := filepath.Glob(filepath.Join(notes, "ci-warning-*"))
	stale := filepath.Join(notes, "key.123.tmp")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-noteLifetime - time.Hour)
	for _, p := range append(old, stale, filepath.Join(notes, noteKeyName)) {
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.FirstNote("ci-warning", "new"); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(old, stale) {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(filepath.Join(notes, noteKeyName)); err != nil {
		t.Errorf("the key was removed: %v", err)
	}
	// The pruned note is first again: the warning once more, never lost.
	if ok, err := c.FirstNote("ci-warning", "old"); err != nil || !ok {
		t.Errorf("after pruning: %v %v", ok, err)
	}
}

// A notes folder that is not the helper's (here a symbolic link planted in its
// place) or a damaged key is an error, never a silent "said before".
func TestFirstNoteRefusesWhatItDidNotMake(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, notesDirName)); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.FirstNote("ci-warning", noteSecret); err == nil || ok {
		t.Fatalf("through a planted link: %v %v", ok, err)
	}

	dir2 := filepath.Join(t.TempDir(), "cache")
	c2, err := Open(dir2)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir2, notesDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, notesDirName, noteKeyName), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := c2.FirstNote("ci-warning", noteSecret); err == nil || ok {
		t.Fatalf("with a damaged key: %v %v", ok, err)
	}
	if _, err := c2.FirstNote("a/b", noteSecret); err == nil {
		t.Fatal("a topic with a slash is accepted")
	}
}

// BenchmarkFirstNote is the cost CI mode adds to a refresh whose warning was given
// before: a fresh Cache (a new process) reading the key and finding the note.
func BenchmarkFirstNote(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "cache")
	c, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.FirstNote("ci-warning", noteSecret); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c := &Cache{dir: dir}
		if first, err := c.FirstNote("ci-warning", noteSecret); err != nil || first {
			b.Fatal(first, err)
		}
	}
}
