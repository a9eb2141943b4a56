package exposure

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// TestPlantedFilesAreRefused: a profile (or a folder on the way to one, or to the
// store or the cache) that another user wrote, can write, or could swap decides
// nothing. The case that matters most: another user replaces the profile with one
// whose authority_host is theirs. The helper refuses it, with an error naming the
// real path and a remedy that acts on that path alone, sends the refresh token
// nowhere (a thief's identity provider, in front of the simulator so it would
// answer, gets no request), and leaves the planted file as it was: the trace stays.
// Each folder case is also tried on a cache hit (the early path): refused too. Once
// the plant is gone, the helper works again. Owners are changed with chown, so the
// test needs root.
func TestPlantedFilesAreRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to plant files owned by another user, and CI runs as root")
		}
		t.Skip("needs root to plant files owned by another user")
	}
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	delete(e.Vars, "PCTOKEN_CLIENT_ID")
	// From here the profile's saved authority host decides where the token goes.
	delete(e.Vars, "PCTOKEN_AUTHORITY_HOST")
	thief := harness.StartEchoIdP(t, e.Sim)
	e.Vars["SSL_CERT_FILE"] = thief.CAFile()
	e.MustRun("get")

	profiles := filepath.Join(configDir(e), "profiles")
	profilePath := filepath.Join(profiles, "default.json")
	original, err := os.ReadFile(profilePath)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(original, &p); err != nil {
		t.Fatal(err)
	}
	p["authority_host"] = thief.URL()
	planted, _ := json.Marshal(p)
	elsewhere := filepath.Join(t.TempDir(), "planted.json")
	mustWrite(t, elsewhere, string(planted), 0o600)

	restoreProfile := func() error {
		os.Remove(profilePath)
		return os.WriteFile(profilePath, original, 0o600)
	}
	chmod := func(path string, mode fs.FileMode) func() error {
		return func() error { return os.Chmod(path, mode) }
	}
	chown := func(path string, uid int) func() error {
		return func() error { return os.Chown(path, uid, uid) }
	}
	cases := []struct {
		name   string
		setup  func() error
		undo   func() error
		path   string // the path the error must name
		remedy string // what the hint must hold
		hit    bool   // also refused when the cache could answer
	}{
		{"a profile another user wrote", func() error {
			if err := os.WriteFile(profilePath, planted, 0o600); err != nil {
				return err
			}
			return os.Chown(profilePath, 65534, 65534)
		}, restoreProfile, profilePath, "rm " + profilePath, false},
		{"a profile others can write", func() error {
			if err := os.WriteFile(profilePath, planted, 0o600); err != nil {
				return err
			}
			return os.Chmod(profilePath, 0o666)
		}, restoreProfile, profilePath, "rm " + profilePath, false},
		{"a profile that is a symbolic link", func() error {
			os.Remove(profilePath)
			return os.Symlink(elsewhere, profilePath)
		}, restoreProfile, profilePath, "rm " + profilePath, false},
		{"a config folder every user can write", chmod(configDir(e), 0o777), chmod(configDir(e), 0o700), configDir(e), "chmod go-w " + configDir(e), true},
		{"a profiles folder of another user", chown(profiles, 65534), chown(profiles, 0), profiles, "", true},
		{"a non-sticky world-writable folder above the config", chmod(e.Vars["XDG_CONFIG_HOME"], 0o757), chmod(e.Vars["XDG_CONFIG_HOME"], 0o700), e.Vars["XDG_CONFIG_HOME"], "elsewhere", true},
		{"a file store folder others can write", chmod(storeDir(e), 0o770), chmod(storeDir(e), 0o700), storeDir(e), "chmod go-w " + storeDir(e), false},
		{"a non-sticky world-writable folder above the cache", chmod(e.Vars["XDG_CACHE_HOME"], 0o777), chmod(e.Vars["XDG_CACHE_HOME"], 0o700), e.Vars["XDG_CACHE_HOME"], "elsewhere", true},
		{"a lock folder of another user", func() error {
			os.MkdirAll(filepath.Join(cacheDir(e), "locks"), 0o700)
			return os.Chown(filepath.Join(cacheDir(e), "locks"), 65534, 65534)
		}, chown(filepath.Join(cacheDir(e), "locks"), 0), filepath.Join(cacheDir(e), "locks"), "", false},
	}
	for _, c := range cases {
		if err := c.setup(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		before := snapshot(t, profilePath)
		tokenCalls := e.Sim.Stats().Requests["token"]
		runs := [][]string{{"get", "--force-refresh"}}
		if c.hit {
			runs = append(runs, []string{"get"}, []string{"get", "-o", "token"})
		}
		for _, args := range runs {
			res := e.Run(args...)
			if res.Code != 5 || !strings.Contains(res.Stderr, "error: ") {
				t.Fatalf("%s, %v: exit %d, want 5 (configuration)\nstdout: %s\nstderr: %s", c.name, args, res.Code, short(res.Stdout), res.Stderr)
			}
			if strings.Contains(res.Stdout, `"access_token":"ey`) || strings.HasPrefix(res.Stdout, "ey") {
				t.Fatalf("%s, %v: a token was handed out", c.name, args)
			}
			if !strings.Contains(res.Stderr, c.path) || !strings.Contains(res.Stderr, "hint: ") || !strings.Contains(res.Stderr, c.remedy) {
				t.Errorf("%s, %v: the error does not name %s with the remedy %q:\n%s", c.name, args, c.path, c.remedy, res.Stderr)
			}
			for _, unsafe := range []string{"chmod 700", "chmod 777", "chmod -R", "chmod go-w /tmp\n"} {
				if strings.Contains(res.Stderr, unsafe) {
					t.Errorf("%s: unsafe remedy %q:\n%s", c.name, unsafe, res.Stderr)
				}
			}
		}
		if n := thief.Requests(); n != 0 {
			t.Fatalf("%s: the thief's identity provider got %d requests", c.name, n)
		}
		if n := e.Sim.Stats().Requests["token"]; n != tokenCalls {
			t.Fatalf("%s: %d token requests were sent", c.name, n-tokenCalls)
		}
		if after := snapshot(t, profilePath); after != before {
			t.Fatalf("%s: the profile file was rewritten:\nbefore %s\nafter  %s", c.name, before, after)
		}
		if err := c.undo(); err != nil {
			t.Fatalf("%s: undo: %v", c.name, err)
		}
		e.MustRun("get", "--force-refresh")
	}
}

// snapshot is what tells a file apart: its content, owner, mode and modification
// time, or what it links to.
func snapshot(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		return "missing"
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		return "link to " + target
	}
	b, _ := os.ReadFile(path)
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode().String() + " uid " + strconv.Itoa(int(st.Uid)) + " " + fi.ModTime().String() + " " + string(b)
}
