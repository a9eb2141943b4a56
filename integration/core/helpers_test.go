package core

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/securestore"
)

// errorOutput is the contract's JSON error object on stdout.
type errorOutput struct {
	Error struct {
		Code    string `json:"code"`
		AADSTS  string `json:"aadsts"`
		Message string `json:"message"`
		Remedy  string `json:"remedy"`
	} `json:"error"`
}

// decodeError reads stdout as the JSON error object and nothing else.
func decodeError(t *testing.T, res harness.Result) errorOutput {
	t.Helper()
	var out errorOutput
	dec := json.NewDecoder(strings.NewReader(res.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil || out.Error.Message == "" {
		t.Fatalf("stdout is not the JSON error object (%v): %q\nstderr: %s", err, res.Stdout, res.Stderr)
	}
	if rest := strings.TrimSpace(res.Stdout[dec.InputOffset():]); rest != "" {
		t.Fatalf("stdout carries more than the error object: %q", rest)
	}
	return out
}

// wantExit fails the test unless the run ended with code.
func wantExit(t *testing.T, res harness.Result, code int, what string) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, res.Code, code, res.Stdout, res.Stderr)
	}
}

// fileStore opens the environment's encrypted file store in this process, the way
// a second program of the same user would.
func fileStore(t *testing.T, e *harness.Env) securestore.Store {
	t.Helper()
	st, _, err := securestore.Open(securestore.Config{
		Backend:    "file",
		FileDir:    e.Vars["PCTOKEN_STORE_DIR"],
		Passphrase: e.Vars["PCTOKEN_FILE_PASSPHRASE"],
	})
	if err != nil {
		t.Fatalf("open the file store: %v", err)
	}
	return st
}

// storedRefreshToken is the profile's refresh token as the file store holds it.
func storedRefreshToken(t *testing.T, e *harness.Env, profileName string) string {
	t.Helper()
	rt, err := fileStore(t, e).Get("refresh-token:" + profileName)
	if err != nil {
		t.Fatalf("refresh token of %s in the file store: %v", profileName, err)
	}
	if rt == "" {
		t.Fatalf("empty refresh token stored for %s", profileName)
	}
	return rt
}

func configDir(e *harness.Env) string {
	return filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper")
}

func cacheDir(e *harness.Env) string {
	return filepath.Join(e.Vars["XDG_CACHE_HOME"], "pctoken-helper")
}

func profilePath(e *harness.Env, name string) string {
	return filepath.Join(configDir(e), "profiles", name+".json")
}

// readProfile is the saved profile file as a generic JSON object.
func readProfile(t *testing.T, e *harness.Env, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(profilePath(e, name))
	if err != nil {
		t.Fatalf("read profile %s: %v", name, err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("profile %s is not JSON: %v", name, err)
	}
	return p
}

// filesUnder lists the regular files below dir (none if it does not exist).
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if os.IsNotExist(err) {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deviceCodeRefreshToken signs the simulator's user in with the device code flow,
// spoken over HTTP as any OAuth client would, and returns the refresh token issued
// to clientID: a token obtained outside the helper, for import.
func deviceCodeRefreshToken(t *testing.T, sim *entrasim.Sim, clientID string) string {
	t.Helper()
	hc := sim.HTTPClient()
	base := sim.URL() + "/" + entrasim.HomeTenantID + "/oauth2/v2.0/"
	post := func(endpoint string, form url.Values) map[string]any {
		t.Helper()
		resp, err := hc.PostForm(base+endpoint, form)
		if err != nil {
			t.Fatalf("POST %s: %v", endpoint, err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("POST %s: %v", endpoint, err)
		}
		if resp.StatusCode != http.StatusOK && body["error"] != "authorization_pending" {
			t.Fatalf("POST %s: %d %v", endpoint, resp.StatusCode, body)
		}
		return body
	}
	scope := entrasim.PartnerCenterScope + " offline_access openid profile"
	dc := post("devicecode", url.Values{"client_id": {clientID}, "scope": {scope}})
	if err := sim.ApproveDeviceCode(dc["user_code"].(string)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tok := post("token", url.Values{
			"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id":   {clientID},
			"device_code": {dc["device_code"].(string)},
		})
		if rt, ok := tok["refresh_token"].(string); ok && rt != "" {
			return rt
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the device code was never redeemed")
	return ""
}
