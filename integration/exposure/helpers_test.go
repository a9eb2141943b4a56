package exposure

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/securestore"
)

// newEnv is a harness environment whose identity provider is an EchoIdP in front of
// the simulator.
func newEnv(t *testing.T) (*harness.Env, *harness.EchoIdP) {
	t.Helper()
	e := harness.New(t)
	idp := harness.StartEchoIdP(t, e.Sim)
	e.Vars["PCTOKEN_AUTHORITY_HOST"] = idp.URL()
	e.Vars["SSL_CERT_FILE"] = idp.CAFile()
	return e, idp
}

// run runs the helper with stdin and extra variables, in a folder of its own.
func run(t *testing.T, e *harness.Env, stdin string, env map[string]string, args ...string) harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.Command(ctx, args...)
	cmd.Dir = t.TempDir()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	if ctx.Err() != nil {
		t.Fatalf("pctoken-helper %s: still running after a minute", strings.Join(args, " "))
	}
	res := harness.Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return res
}

func storeDir(e *harness.Env) string { return e.Vars["PCTOKEN_STORE_DIR"] }
func configDir(e *harness.Env) string {
	return filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper")
}
func cacheDir(e *harness.Env) string {
	return filepath.Join(e.Vars["XDG_CACHE_HOME"], "pctoken-helper")
}

// storedRefreshToken reads a profile's refresh token from the Env's file store.
func storedRefreshToken(t *testing.T, e *harness.Env, profileName string) string {
	t.Helper()
	st, _, err := securestore.Open(securestore.Config{Backend: "file", FileDir: storeDir(e), Passphrase: harness.Passphrase})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := st.Get("refresh-token:" + profileName)
	if err != nil {
		t.Fatalf("read the refresh token of %s: %v", profileName, err)
	}
	return rt
}

func short(s string) string {
	if len(s) > 1500 {
		return s[:1500] + "..."
	}
	return s
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
