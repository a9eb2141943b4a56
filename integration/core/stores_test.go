package core

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// The encrypted file store keeps the refresh token across processes: consent writes
// it, later processes read and rotate it, and it is never on disk in clear.
func TestFileStoreAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	rt := storedRefreshToken(t, e, "default")
	files := filesUnder(t, e.Vars["PCTOKEN_STORE_DIR"])
	if len(files) == 0 {
		t.Fatal("consent wrote nothing to the file store")
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", f, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(rt)) {
			t.Fatalf("%s holds the refresh token in clear", f)
		}
	}
	for i := range 2 {
		res := e.MustRun("get", "-v", "--scope", "graph", "--force-refresh")
		if tok := decode(t, res.Stdout); tok.Cached {
			t.Fatalf("run %d: cached", i)
		}
		next := storedRefreshToken(t, e, "default")
		if next == rt || !e.Sim.RefreshTokenValid(next) {
			t.Fatalf("run %d did not save a valid rotated refresh token", i)
		}
		if strings.Contains(res.Stderr, rt) || strings.Contains(res.Stderr, next) {
			t.Fatalf("-v printed a refresh token:\n%s", res.Stderr)
		}
		rt = next
	}
	// Nothing went anywhere else: no keyring, no plaintext in config or cache.
	for _, dir := range []string{configDir(e), cacheDir(e)} {
		for _, f := range filesUnder(t, dir) {
			if b, _ := os.ReadFile(f); bytes.Contains(b, []byte(rt)) {
				t.Fatalf("%s holds the refresh token", f)
			}
		}
	}
}

func TestSecretServiceAcrossProcesses(t *testing.T) {
	t.Parallel()
	ss := harness.StartSecretService(t)
	e := harness.New(t)
	e.Vars["PCTOKEN_STORE"] = "secret-service"
	e.Vars["DBUS_SESSION_BUS_ADDRESS"] = ss.Addr
	delete(e.Vars, "PCTOKEN_FILE_PASSPHRASE")
	res := e.Consent("--profile", "ss")
	if !strings.Contains(res.Stderr, "secret-service") {
		t.Errorf("consent summary does not name the store:\n%s", res.Stderr)
	}
	rt := lookup(t, ss, "refresh-token:ss")
	if rt == "" || !e.Sim.RefreshTokenValid(rt) {
		t.Fatalf("the Secret Service does not hold a valid refresh token after consent")
	}
	first := decode(t, e.MustRun("get", "--profile", "ss", "--scope", "graph").Stdout)
	if first.Cached {
		t.Fatal("first get was cached")
	}
	rotated := lookup(t, ss, "refresh-token:ss")
	if rotated == rt || !e.Sim.RefreshTokenValid(rotated) {
		t.Fatal("the rotated refresh token did not reach the Secret Service")
	}
	e.Sim.SetStrictRotation(true)
	if tok := decode(t, e.MustRun("get", "--profile", "ss", "--scope", "arm").Stdout); tok.Cached {
		t.Fatal("arm token was cached")
	}
	if files := filesUnder(t, e.Vars["PCTOKEN_STORE_DIR"]); len(files) != 0 {
		t.Fatalf("the secret-service run wrote to the file store: %v", files)
	}
	if out := e.MustRun("status", "--output", "json").Stdout; strings.Contains(out, rotated) || !strings.Contains(out, `"store": "secret-service"`) {
		t.Fatalf("status:\n%s", out)
	}
	e.MustRun("logout", "--profile", "ss")
	if v := lookup(t, ss, "refresh-token:ss"); v != "" {
		t.Fatal("logout left the refresh token in the Secret Service")
	}

	// auto picks the Secret Service when a session bus offers an unlocked keyring.
	delete(e.Vars, "PCTOKEN_STORE")
	res = e.Consent("--profile", "auto")
	if !strings.Contains(res.Stderr, "store:       secret-service") {
		t.Errorf("auto did not pick the Secret Service:\n%s", res.Stderr)
	}
	if rt := lookup(t, ss, "refresh-token:auto"); rt == "" || !e.Sim.RefreshTokenValid(rt) {
		t.Fatal("auto consent did not put the refresh token in the Secret Service")
	}
	decode(t, e.MustRun("get", "--profile", "auto", "--scope", "graph").Stdout)
	if files := filesUnder(t, e.Vars["PCTOKEN_STORE_DIR"]); len(files) != 0 {
		t.Fatalf("auto wrote to the file store: %v", files)
	}
}

// A wrong file-store passphrase is a configuration error (exit 5) with a clear
// message, and nothing is asked on stdout.
func TestWrongFilePassphrase(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	e.Vars["PCTOKEN_FILE_PASSPHRASE"] = "not-the-passphrase"
	res := e.Run("get", "--scope", "graph")
	wantExit(t, res, 5, "get with a wrong passphrase")
	if out := decodeError(t, res); !strings.Contains(out.Error.Message, "passphrase") {
		t.Fatalf("JSON error does not say what is wrong: %+v", out.Error)
	}
	if !strings.Contains(res.Stderr, "passphrase") {
		t.Fatalf("stderr does not say what is wrong:\n%s", res.Stderr)
	}
	res = e.Run("get", "--scope", "graph", "-o", "token")
	if res.Code != 5 || res.Stdout != "" {
		t.Fatalf("-o token with a wrong passphrase: exit %d, stdout %q", res.Code, res.Stdout)
	}
}

// With no PCTOKEN_FILE_PASSPHRASE and no terminal (a new session has no /dev/tty),
// the helper fails at once with a message saying what to set.
func TestFileStoreNoPassphraseNoTerminal(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	delete(e.Vars, "PCTOKEN_FILE_PASSPHRASE")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.Command(ctx, "get", "--scope", "graph")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("get with no passphrase and no terminal: %v (want exit 5)\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	// A prompt nobody can answer would hang until the 30s context; failing takes
	// milliseconds (10s allows for a loaded machine).
	if took > 10*time.Second {
		t.Fatalf("failing took %s", took)
	}
	if !strings.Contains(stderr.String(), "PCTOKEN_FILE_PASSPHRASE") {
		t.Fatalf("stderr does not say to set PCTOKEN_FILE_PASSPHRASE:\n%s", stderr.String())
	}
	res := harness.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: 5}
	decodeError(t, res)
	t.Logf("no passphrase, no terminal: exit 5 after %s", took.Round(time.Millisecond))
}
