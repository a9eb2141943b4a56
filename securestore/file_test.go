//go:build unix

package securestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/internal/safefs"
)

func openTestFile(t testing.TB, dir, passphrase string) Store {
	t.Helper()
	s, name, err := Open(Config{Backend: "file", FileDir: dir, Passphrase: passphrase})
	if err != nil {
		t.Fatal(err)
	}
	if name != "file" {
		t.Fatalf("backend %q, want file", name)
	}
	return s
}

func fileChild(op, dir, passphrase, key, value string) child {
	return child{op: op, env: map[string]string{
		"CHILD_BACKEND": "file", "CHILD_DIR": dir, "CHILD_PASSPHRASE": passphrase,
		"CHILD_KEY": key, "CHILD_VALUE": value,
	}}
}

func TestFileAcrossProcesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	const key, value = "refresh-token/contoso:prod", "0.AXYA-refresh\ntoken with spaces and ünicode"

	if rep := fileChild("set", dir, "pass", key, value).run(t); rep.Error != "" {
		t.Fatalf("set: %s", rep.Error)
	}
	if rep := fileChild("get", dir, "pass", key, "").run(t); rep.Error != "" || rep.Value != value {
		t.Fatalf("get in another process = %q, %q; want %q", rep.Value, rep.Error, value)
	}
	if got, err := openTestFile(t, dir, "pass").Get(key); err != nil || got != value {
		t.Fatalf("get in this process = %q, %v", got, err)
	}
	if rep := fileChild("set", dir, "pass", key, "newer").run(t); rep.Error != "" {
		t.Fatalf("replace: %s", rep.Error)
	}
	if rep := fileChild("get", dir, "pass", key, "").run(t); rep.Value != "newer" {
		t.Fatalf("after replace got %q, %q", rep.Value, rep.Error)
	}
	if rep := fileChild("remove", dir, "pass", key, "").run(t); rep.Error != "" {
		t.Fatalf("remove: %s", rep.Error)
	}
	if rep := fileChild("get", dir, "pass", key, "").run(t); !rep.is("ErrNotFound") {
		t.Fatalf("get after remove: %+v, want ErrNotFound", rep)
	}
	if rep := fileChild("remove", dir, "pass", key, "").run(t); rep.Error != "" {
		t.Fatalf("removing a missing key: %s", rep.Error)
	}
}

func TestFileModesAndNoPlaintext(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "store")
	s := openTestFile(t, dir, "pass")
	secrets := map[string]string{"refresh:one": "plain-secret-one", "client-secret:two": "plain-secret-two"}
	for k, v := range secrets {
		if err := s.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("folder mode %o, want 700", perm)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != len(secrets) {
		t.Errorf("folder holds %d files, want %d (no temporary files left)", len(des), len(secrets))
	}
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode %o, want 600", de.Name(), perm)
		}
	}
	assertNoPlaintext(t, dir, "plain-secret")
}

func assertNoPlaintext(t *testing.T, dir, needle string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if bytes.Contains(b, []byte(needle)) {
			t.Errorf("%s holds the secret in plain text", filepath.Base(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFileWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	if err := openTestFile(t, dir, "right").Set("k", "v"); err != nil {
		t.Fatal(err)
	}
	wrong := openTestFile(t, dir, "wrong")
	_, err := wrong.Get("k")
	if !errors.Is(err, ErrWrongPassphrase) || err.Error() != "cannot decrypt the file store: wrong passphrase?" {
		t.Fatalf("Get with a wrong passphrase: %v", err)
	}
	if err := openTestFile(t, dir, "wrong").Set("other", "x"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Set with a wrong passphrase on a store with entries: %v, want ErrWrongPassphrase", err)
	}
	if got, err := openTestFile(t, dir, "right").Get("k"); err != nil || got != "v" {
		t.Fatalf("the entry no longer opens with the right passphrase: %q, %v", got, err)
	}
	if _, err := openTestFile(t, dir, "right").Get("other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused Set wrote something: %v", err)
	}
	if rep := fileChild("get", dir, "wrong", "k", "").run(t); !rep.is("ErrWrongPassphrase") {
		t.Fatalf("child with a wrong passphrase: %+v", rep)
	}
}

func TestFileNoPassphraseNoPrompt(t *testing.T) {
	dir := t.TempDir()
	noPass, _, err := Open(Config{Backend: "file", FileDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noPass.Get("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key needs no passphrase: %v", err)
	}
	err = noPass.Set("k", "v")
	if !errors.Is(err, ErrNoPassphrase) || !strings.Contains(err.Error(), "PCTOKEN_FILE_PASSPHRASE") {
		t.Fatalf("Set without a passphrase: %v", err)
	}
	if err := openTestFile(t, dir, "pass").Set("k", "v"); err != nil {
		t.Fatal(err)
	}
	noPass, _, _ = Open(Config{Backend: "file", FileDir: dir})
	if _, err := noPass.Get("k"); !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("Get without a passphrase: %v", err)
	}
}

func TestFileNoTerminal(t *testing.T) {
	dir := t.TempDir()
	if err := openTestFile(t, dir, "pass").Set("k", "v"); err != nil {
		t.Fatal(err)
	}
	c := fileChild("get", dir, "", "k", "")
	c.env["CHILD_PROMPT"] = "1"
	c.setsid = true // no controlling terminal: /dev/tty cannot be opened
	start := time.Now()
	rep := c.run(t)
	if !rep.is("ErrNoPassphrase") || !strings.Contains(rep.Error, "PCTOKEN_FILE_PASSPHRASE") {
		t.Fatalf("no terminal: %+v", rep)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v to fail", d)
	}
}

func TestFilePromptOnFakeTTY(t *testing.T) {
	dir := t.TempDir()
	c := fileChild("fake-tty", dir, "", "k", "secret-value")
	c.env["CHILD_PROMPT"] = "1"
	c.env["CHILD_TTY_ANSWERS"] = "typed pass,typed pass"
	rep := c.run(t) // fails if anything reached stdout
	if rep.Error != "" || rep.Value != "secret-value" {
		t.Fatalf("prompted set+get: %+v", rep)
	}
	want := "Passphrase of the pctoken-helper file store in " + dir + ": Repeat it to create the store: "
	if rep.TTY != want {
		t.Fatalf("terminal saw %q, want %q", rep.TTY, want)
	}
	if got, err := openTestFile(t, dir, "typed pass").Get("k"); err != nil || got != "secret-value" {
		t.Fatalf("the typed passphrase does not open the store: %q, %v", got, err)
	}
}

func TestFilePromptInProcess(t *testing.T) {
	open := func(dir string, tty *fakeTTY, prompt bool) Store {
		s, _, err := Open(Config{Backend: "file", FileDir: dir, Prompt: prompt, TTY: tty.open})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("asked once per store", func(t *testing.T) {
		dir := t.TempDir()
		tty := newFakeTTY([]string{"pw", "pw"})
		s := open(dir, tty, true)
		if _, err := s.Get("missing"); !errors.Is(err, ErrNotFound) || tty.opens != 0 {
			t.Fatalf("Open and Get of a missing key: %v, %d prompts; want ErrNotFound and none", err, tty.opens)
		}
		for _, k := range []string{"a", "b", "c"} {
			if err := s.Set(k, "v"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(k); err != nil {
				t.Fatal(err)
			}
		}
		if tty.opens != 1 {
			t.Fatalf("terminal opened %d times, want 1", tty.opens)
		}
		// An existing store: no confirmation.
		tty = newFakeTTY([]string{"pw"})
		if got, err := open(dir, tty, true).Get("a"); err != nil || got != "v" {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if n := strings.Count(tty.transcript(), "Repeat"); n != 0 {
			t.Fatalf("%d prompts on an existing store: %q", n, tty.transcript())
		}
	})
	t.Run("confirmation differs", func(t *testing.T) {
		dir := t.TempDir()
		err := open(dir, newFakeTTY([]string{"pw", "typo"}), true).Set("a", "v")
		if err == nil || !strings.Contains(err.Error(), "differ") {
			t.Fatalf("Set = %v, want the passphrases to differ", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("a refused Set left %d files", len(entries))
		}
	})
	t.Run("empty", func(t *testing.T) {
		err := open(t.TempDir(), newFakeTTY([]string{""}), true).Set("a", "v")
		if !errors.Is(err, ErrNoPassphrase) {
			t.Fatalf("Set = %v, want ErrNoPassphrase", err)
		}
	})
	t.Run("terminal closed", func(t *testing.T) {
		s := open(t.TempDir(), newFakeTTY(nil), true)
		if err := s.Set("a", "v"); err == nil {
			t.Fatal("Set succeeded with no answer")
		}
	})
	t.Run("prompt not allowed", func(t *testing.T) {
		tty := newFakeTTY([]string{"pw", "pw"})
		if err := open(t.TempDir(), tty, false).Set("a", "v"); !errors.Is(err, ErrNoPassphrase) {
			t.Fatalf("Set = %v, want ErrNoPassphrase", err)
		}
		if tty.opens != 0 {
			t.Fatal("the terminal was opened though prompting is not allowed")
		}
	})
}

// TestFileAtomicUnderKill kills writers at random moments: the entry must
// always decrypt to a value some writer set.
func TestFileAtomicUnderKill(t *testing.T) {
	runs := 200
	if testing.Short() {
		runs = 30
	} else if raceEnabled {
		runs = 60
	}
	dir := t.TempDir()
	const key = "refresh:kill"
	if err := openTestFile(t, dir, "pass").Set(key, "initial"); err != nil {
		t.Fatal(err)
	}
	valid := regexp.MustCompile(`^(initial|w[0-9]+-[0-9]+-x*)$`)
	// Kill within about two writes' time after the first write is done.
	start := time.Now()
	for range 5 {
		if err := openTestFile(t, dir, "pass").Set(key, "initial"); err != nil {
			t.Fatal(err)
		}
	}
	window := 2 * time.Since(start) / 5
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	for i := range runs {
		ready, readyW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := childCommand(context.Background(), "set-loop")
		cmd.Env = append(cmd.Env, "CHILD_BACKEND=file", "CHILD_DIR="+dir,
			"CHILD_PASSPHRASE=pass", "CHILD_KEY="+key, "CHILD_VALUE=w"+strconv.Itoa(i))
		cmd.ExtraFiles = []*os.File{readyW}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		readyW.Close()
		ready.Read(make([]byte, 1))
		ready.Close()
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		got, err := openTestFile(t, dir, "pass").Get(key)
		if err != nil || !valid.MatchString(got) {
			t.Fatalf("after killing writer %d: %q, %v", i, got, err)
		}
		seen[got] = true
	}
	// Each writer wrote at least once before it was killed.
	if len(seen) < runs*9/10 {
		t.Fatalf("only %d distinct values after %d writers", len(seen), runs)
	}
	assertNoPlaintext(t, dir, "initial")
	// A control: a torn entry, as keyring's in-place write would leave, does
	// not decrypt, so the loop above would have caught one.
	name, _ := fileName(key)
	whole, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name), whole[:len(whole)*2/3], 0o600)
	if _, err := openTestFile(t, dir, "pass").Get(key); err == nil {
		t.Fatal("a torn entry decrypted")
	}
}

// TestFileReplacesDamagedEntry: a damaged entry reads as an error, and a new
// consent can write over it.
func TestFileReplacesDamagedEntry(t *testing.T) {
	dir := t.TempDir()
	name, _ := fileName("k")
	// jose2go panics on this one (see testdata/fuzz/FuzzFileGet).
	damaged := "eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLCJ0Ijoi0000000000000000000000000000001000000000000000000000000iLCJlbmMiOiJBMjU2R0NNIiwicDJjIjo0ZTA0LCJwMnMiOiJ0Y010X000Z010Y010Y010In0...."
	if err := os.WriteFile(filepath.Join(dir, name), []byte(damaged), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTestFile(t, dir, "pass")
	if _, err := s.Get("k"); !errors.Is(err, errDamaged) || !strings.Contains(err.Error(), `"k"`) {
		t.Fatalf("Get of a damaged entry: %v", err)
	}
	s = openTestFile(t, dir, "pass")
	if err := s.Set("k", "v"); err != nil {
		t.Fatalf("Set over a damaged entry: %v", err)
	}
	if got, err := openTestFile(t, dir, "pass").Get("k"); err != nil || got != "v" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

func TestFileRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	s := openTestFile(t, dir, "pass")
	if err := s.Set("k", "v"); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(dir, tempPrefix+"OLD"), filepath.Join(dir, tempPrefix+"FRESH")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("leftover"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * staleTemp)
	os.Chtimes(old, past, past)
	if err := s.Set("k", "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a temporary file that may be in use was removed: %v", err)
	}
}

func TestFileRefusesOpenFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	err := openTestFile(t, dir, "pass").Set("k", "v")
	if err == nil || !strings.Contains(safefs.RemedyOf(err), "chmod go-w "+dir) {
		t.Fatalf("Set in a world-writable folder: %v", err)
	}
}

func TestFileNeedsFolder(t *testing.T) {
	if _, _, err := Open(Config{Backend: "file"}); err == nil || !strings.Contains(err.Error(), "PCTOKEN_STORE_DIR") {
		t.Fatalf("Open without a folder: %v", err)
	}
}

func TestFileName(t *testing.T) {
	for key, want := range map[string]string{
		"refresh-token.default": "refresh-token.default",
		"a/b":                   "a_2Fb",
		".hidden":               "_2Ehidden",
		"..":                    "_2E.",
		"x:y z_%":               "x_3Ay_20z_5F_25",
		`C:\con`:                "C_3A_5Ccon",
	} {
		if got, err := fileName(key); err != nil || got != want {
			t.Errorf("fileName(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	if _, err := fileName(""); err == nil {
		t.Error("empty key accepted")
	}
}

// FuzzFileName checks that every key maps to a distinct, plain file name.
func FuzzFileName(f *testing.F) {
	for _, s := range []string{"refresh:default", "../../etc/passwd", ".", "%2F", "a/b", "\x00", "ü"} {
		f.Add(s)
	}
	plain := regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*$`)
	f.Fuzz(func(t *testing.T, key string) {
		name, err := fileName(key)
		if key == "" {
			if err == nil {
				t.Fatal("empty key accepted")
			}
			return
		}
		if err != nil || !plain.MatchString(name) {
			t.Fatalf("fileName(%q) = %q, %v", key, name, err)
		}
		if back := unescapeFileName(t, name); back != key {
			t.Fatalf("fileName(%q) = %q, which reads back as %q", key, name, back)
		}
	})
}

func unescapeFileName(t *testing.T, name string) string {
	var b []byte
	for i := 0; i < len(name); i++ {
		if name[i] != '_' {
			b = append(b, name[i])
			continue
		}
		var c byte
		for _, h := range name[i+1 : i+3] {
			c = c<<4 | byte(strings.IndexRune("0123456789ABCDEF", h))
		}
		b = append(b, c)
		i += 2
	}
	return string(b)
}

// FuzzFileGet feeds arbitrary entry files, as a damaged disk or another
// program could leave them, to Get: it must answer with an error, not panic.
func FuzzFileGet(f *testing.F) {
	dir := f.TempDir()
	s := openTestFile(f, dir, "pass")
	if err := s.Set("seed", "value"); err != nil {
		f.Fatal(err)
	}
	name, _ := fileName("seed")
	valid, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte("a.b.c.d.e"))
	f.Add([]byte("eyJhbGciOiJQQkVTMi1IUzI1NitBMTI4S1ciLCJlbmMiOiJBMjU2R0NNIiwicDJjIjowLCJwMnMiOiIifQ....."))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(filepath.Join(dir, "fuzz"), content, 0o600); err != nil {
			t.Fatal(err)
		}
		s := openTestFile(t, dir, "pass")
		if _, err := s.Get("fuzz"); err != nil && !errors.Is(err, ErrWrongPassphrase) && !errors.Is(err, errDamaged) {
			t.Fatalf("unexpected kind of error: %v", err)
		}
	})
}

func TestPlantedEntryCannotAskForUnboundedWork(t *testing.T) {
	dir := t.TempDir()
	st, _, err := Open(Config{Backend: "file", FileDir: dir, Passphrase: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Set("refresh-token:p", "value"); err != nil {
		t.Fatal(err)
	}
	name, _ := fileName("refresh-token:p")
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":2000000000,"p2s":"c2FsdA"}`))
	if err := os.WriteFile(filepath.Join(dir, name), []byte(header+".a.b.c.d"), 0o600); err != nil {
		t.Fatal(err)
	}
	st2, _, _ := Open(Config{Backend: "file", FileDir: dir, Passphrase: "pw"})
	start := time.Now()
	if _, err := st2.Get("refresh-token:p"); err == nil || !errors.Is(err, errDamaged) {
		t.Fatalf("Get of a planted entry: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("planted entry took %v", took)
	}
}
