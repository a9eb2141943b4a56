//go:build unix

package securestore

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestOpenUnknownBackend(t *testing.T) {
	_, _, err := Open(Config{Backend: "keyctl"})
	if !errors.Is(err, ErrUnknownBackend) {
		t.Fatalf("err = %v, want ErrUnknownBackend", err)
	}
	want := `unknown store "keyctl": valid stores are auto, secret-service, keychain, wincred, kwallet, pass, file`
	if err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

func TestOpenUnavailableBackends(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the backends missing differ by platform")
	}
	for backend, hint := range map[string]string{
		// kwallet registers only when requested at start-up (busguard).
		"kwallet":  "PCTOKEN_STORE=kwallet",
		"keychain": "--store file",
		"wincred":  "--store file",
	} {
		_, _, err := Open(Config{Backend: backend})
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), hint) {
			t.Errorf("Open(%s) = %v, want ErrUnavailable mentioning %s", backend, err, hint)
		}
	}
}

func TestEnvStore(t *testing.T) {
	var warn bytes.Buffer
	const token = "0.AXYA-ci-refresh-token"
	s := NewEnvStore("refresh:default", token, &warn, nil)
	if got, err := s.Get("refresh:default"); err != nil || got != token {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if _, err := s.Get("client-secret:default"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of another key = %v, want ErrNotFound", err)
	}
	for range 3 {
		if err := s.Set("refresh:default", "0.AXYA-rotated-token"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set("client-secret:default", "s"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("refresh:default"); err != nil {
		t.Fatal(err)
	}
	out := warn.String()
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "PCTOKEN_REFRESH_TOKEN") {
		t.Fatalf("warnings: %q, want one line naming PCTOKEN_REFRESH_TOKEN", out)
	}
	if strings.Contains(out, "AXYA") {
		t.Fatalf("the warning shows a token: %q", out)
	}
	if got, _ := s.Get("refresh:default"); got != token {
		t.Fatalf("Set or Remove changed what Get returns: %q", got)
	}
	if _, err := NewEnvStore("refresh:default", "", nil, nil).Get("refresh:default"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty token: %v, want ErrNotFound", err)
	}
}

// An earlier process that said it already keeps the store quiet; the record is asked
// for only when there is something to say, and once per process.
func TestEnvStoreWarnedBefore(t *testing.T) {
	for _, before := range []bool{false, true} {
		var warn bytes.Buffer
		asked := 0
		s := NewEnvStore("refresh:default", "0.AXYA-ci-refresh-token", &warn, func() bool { asked++; return before })
		_, _ = s.Get("refresh:default")
		_ = s.Set("client-secret:default", "s")
		if asked != 0 {
			t.Fatalf("asked %d times before a rotated token was to be saved", asked)
		}
		for range 3 {
			_ = s.Set("refresh:default", "0.AXYA-rotated-token")
		}
		if said := strings.Count(warn.String(), "\n"); asked != 1 || before && said != 0 || !before && said != 1 {
			t.Fatalf("said before %v: asked %d times, %d warnings: %q", before, asked, said, warn.String())
		}
	}
}

// TestPassBackend goes through keyring's pass backend with a throwaway gpg
// key; it shows the error mapping of the keyring-backed stores.
func TestPassBackend(t *testing.T) {
	for _, bin := range []string{"pass", "gpg", "gpgconf"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed", bin)
		}
	}
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	t.Setenv("GNUPGHOME", home)
	t.Setenv("PASSWORD_STORE_DIR", filepath.Join(home, "store"))
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	// gpg starts an agent: stop it by its home when done.
	t.Cleanup(func() { exec.Command("gpgconf", "--kill", "gpg-agent").Run() })
	run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", "pctoken-test@example.invalid", "default", "default", "never")
	run("pass", "init", "pctoken-test@example.invalid")

	s, name, err := Open(Config{Backend: "pass"})
	if err != nil || name != "pass" {
		t.Fatalf("Open = %q, %v", name, err)
	}
	if _, err := s.Get("refresh:default"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key = %v", err)
	}
	if err := s.Set("refresh:default", "pass-secret-value"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get("refresh:default"); err != nil || got != "pass-secret-value" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(home, "store", "pctoken-helper", "refresh:default.gpg")); err != nil {
		t.Fatalf("entry not under the service name: %v", err)
	}
	assertNoPlaintext(t, filepath.Join(home, "store"), "pass-secret-value")
	if err := s.Remove("refresh:default"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("refresh:default"); err != nil {
		t.Fatalf("removing a missing key: %v", err)
	}
	if _, err := s.Get("refresh:default"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Remove = %v", err)
	}
}

func BenchmarkFileGet(b *testing.B) {
	s := openTestFile(b, b.TempDir(), "bench")
	if err := s.Set("bench", "0.AXYA-benchmark-token"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Get("bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFileSet(b *testing.B) {
	s := openTestFile(b, b.TempDir(), "bench")
	for b.Loop() {
		if err := s.Set("bench", "0.AXYA-benchmark-token"); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzReadLine: whatever a terminal sends, reading a passphrase ends with a
// line or an error, never a panic, and keeps no line break.
func FuzzReadLine(f *testing.F) {
	for _, s := range []string{"pass\n", "pass\r\n", "", "\n", "no newline", "a\nb\n", strings.Repeat("x", maxPassphrase+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := strings.NewReader(in)
		line, err := readLine(r)
		if err != nil {
			return
		}
		if strings.ContainsRune(line, '\n') || strings.HasSuffix(line, "\r") || len(line) > maxPassphrase {
			t.Fatalf("readLine(%q) = %q", in, line)
		}
		if i := strings.IndexByte(in, '\n'); i >= 0 && r.Len() != len(in)-i-1 {
			t.Fatalf("readLine consumed past the newline of %q", in)
		}
	})
}
