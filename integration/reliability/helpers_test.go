package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/securestore"
)

// jsonToken is get's json output.
type jsonToken = harness.Token

// jsonError is the error object of json output and --request answers.
type jsonError struct {
	ID    json.RawMessage `json:"id"`
	Error *struct {
		Code    string `json:"code"`
		AADSTS  string `json:"aadsts"`
		Message string `json:"message"`
		Remedy  string `json:"remedy"`
	} `json:"error"`
}

func decodeToken(t testing.TB, out string) jsonToken {
	t.Helper()
	var tok jsonToken
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("get output is not a token (%v):\n%s", err, out)
	}
	return tok
}

// newEnv is harness.New with this package's marker in every run's environment, so
// that TestMain can find any process the tests left behind (see leftovers).
func newEnv(t testing.TB) *harness.Env {
	t.Helper()
	e := harness.New(t)
	e.Vars[markerVar] = runMarker
	return e
}

// storeDir, cacheDir and configDir are where an Env's helper keeps its files.
func storeDir(e *harness.Env) string { return e.Vars["PCTOKEN_STORE_DIR"] }
func cacheDir(e *harness.Env) string {
	return filepath.Join(e.Vars["XDG_CACHE_HOME"], "pctoken-helper")
}
func configDir(e *harness.Env) string {
	return filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper")
}

// fileStore opens the Env's encrypted file store the way the helper does.
func fileStore(t testing.TB, e *harness.Env) securestore.Store {
	t.Helper()
	st, _, err := securestore.Open(securestore.Config{Backend: "file", FileDir: storeDir(e), Passphrase: harness.Passphrase})
	if err != nil {
		t.Fatalf("open the file store: %v", err)
	}
	return st
}

// storedRefreshToken reads the profile's refresh token back from the file store.
func storedRefreshToken(t testing.TB, e *harness.Env, profileName string) string {
	t.Helper()
	rt, err := fileStore(t, e).Get("refresh-token:" + profileName)
	if err != nil {
		t.Fatalf("read the stored refresh token of %s: %v", profileName, err)
	}
	return rt
}

// timedRun runs the helper with stdin and reports how long it took. It fails the test
// if the run takes longer than limit: the helper must never hang.
func timedRun(t testing.TB, e *harness.Env, limit time.Duration, stdin string, args ...string) (harness.Result, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := e.Command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("pctoken-helper %s: still running after %s\nstderr: %s", strings.Join(args, " "), limit, errb.String())
	}
	res := harness.Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run pctoken-helper: %v", err)
	}
	return res, took
}

// noPanic fails the test if stderr shows a Go panic or a goroutine dump.
func noPanic(t testing.TB, what string, res harness.Result) {
	t.Helper()
	for _, s := range []string{"panic:", "goroutine ", "runtime error", "[signal "} {
		if strings.Contains(res.Stderr, s) || strings.Contains(res.Stdout, s) {
			t.Fatalf("%s: output shows %q:\nstdout: %s\nstderr: %s", what, s, res.Stdout, res.Stderr)
		}
	}
}

// checkFiles fails the test unless every file the helper keeps parses: each cache
// entry, each saved profile, each entry of the file store (which must decrypt), and
// the metadata documents kept on disk. Temporary files of killed writers are allowed
// where the packages clean them up later.
func checkFiles(t testing.TB, e *harness.Env) {
	t.Helper()
	c, err := cache.Open(cacheDir(e))
	if err != nil {
		t.Fatalf("open the cache: %v", err)
	}
	var skipped []string
	c.Logf = func(format string, args ...any) {
		if strings.HasPrefix(format, "cache: skipping") {
			skipped = append(skipped, strings.TrimSpace(fmt.Sprintf(format, args...)))
		}
	}
	if _, err := c.List(); err != nil {
		t.Fatalf("list the cache: %v", err)
	}
	if len(skipped) > 0 {
		t.Fatalf("the cache holds unreadable entries:\n%s", strings.Join(skipped, "\n"))
	}
	des, err := os.ReadDir(cacheDir(e))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cacheDir(e), name))
		if err != nil || !json.Valid(b) {
			t.Fatalf("cache file %s does not parse (%v): %q", name, err, b)
		}
	}
	// Metadata documents kept on disk are JSON files too.
	filepath.WalkDir(filepath.Join(cacheDir(e), "metadata"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") || strings.Contains(path, string(filepath.Separator)+"tmp") {
			return nil
		}
		b, rerr := os.ReadFile(path)
		if rerr != nil || !json.Valid(b) {
			t.Fatalf("metadata file %s does not parse (%v): %q", path, rerr, b)
		}
		return nil
	})

	dir := profile.Dir(filepath.Join(configDir(e), "profiles"))
	names, err := dir.List()
	if err != nil {
		t.Fatalf("list profiles: %v", err)
	}
	for _, n := range names {
		if _, err := dir.Load(n); err != nil {
			t.Fatalf("profile %s does not load: %v", n, err)
		}
	}

	st := fileStore(t, e)
	des, err = os.ReadDir(storeDir(e))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue // .tmp-* files are leftovers of killed writers, removed later
		}
		key := unescapeStoreName(de.Name())
		if _, err := st.Get(key); err != nil {
			t.Fatalf("file store entry %s (key %q) does not decrypt: %v", de.Name(), key, err)
		}
	}
}

// unescapeStoreName reverses the file store's file naming ("_XX" for a byte).
func unescapeStoreName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] == '_' && i+2 < len(name) {
			var v byte
			for _, c := range []byte(name[i+1 : i+3]) {
				v <<= 4
				switch {
				case '0' <= c && c <= '9':
					v |= c - '0'
				case 'A' <= c && c <= 'F':
					v |= c - 'A' + 10
				}
			}
			b.WriteByte(v)
			i += 2
			continue
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

// waitFor polls cond every few milliseconds until it holds or limit passes.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
