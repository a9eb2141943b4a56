package ergonomics

import (
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

type doctorReport struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Profile string `json:"profile"`
		Check   string `json:"check"`
		Status  string `json:"status"`
		Detail  string `json:"detail"`
		Fix     string `json:"fix"`
		Code    string `json:"code"`
		AADSTS  string `json:"aadsts"`
	} `json:"checks"`
}

// status is the outcome of check for profile p ("" for the general checks).
func (r doctorReport) status(p, check string) (status, detail, fix string) {
	for _, c := range r.Checks {
		if c.Profile == p && c.Check == check {
			return c.Status, c.Detail, c.Fix
		}
	}
	return "missing", "", ""
}

func doctor(t *testing.T, e *env, args ...string) (doctorReport, harness.Result) {
	t.Helper()
	res := e.Run(append([]string{"doctor", "-o", "json"}, args...)...)
	var r doctorReport
	decodeJSON(t, res.Stdout, &r)
	noSecret(t, res.Stdout, res.Stderr)
	return r, res
}

func TestDoctorHealthy(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	e.Consent("--profile", "fabrikam")
	e.Sim.ResetStats()

	r, res := doctor(t, e)
	if res.Code != 0 || !r.OK {
		t.Fatalf("doctor on healthy profiles: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, p := range []string{"contoso", "fabrikam"} {
		for _, c := range []string{"profile", "store", "tls", "clock", "refresh"} {
			if st, detail, _ := r.status(p, c); st != "ok" {
				t.Errorf("%s %s: %s (%s)", p, c, st, detail)
			}
		}
	}
	for _, c := range []string{"config folder", "cache folder"} {
		if st, detail, _ := r.status("", c); st != "ok" {
			t.Errorf("%s: %s (%s)", c, st, detail)
		}
	}
	// One live redemption per profile, and the rotated token works afterwards.
	if n := e.Sim.Stats().Requests["token"]; n != 2 {
		t.Errorf("doctor made %d token requests for two profiles, want 2", n)
	}
	e.MustRun("get", "--profile", "contoso", "--force-refresh")

	// --profile narrows to one; text output has one line per check.
	res = e.MustRun("doctor", "--profile", "fabrikam")
	if strings.Contains(res.Stdout, "profile contoso") || !strings.Contains(res.Stdout, "profile fabrikam") {
		t.Fatalf("doctor --profile fabrikam:\n%s", res.Stdout)
	}
	for _, c := range []string{"store", "tls", "clock", "refresh"} {
		if !strings.Contains(res.Stdout, "  ok    "+c) {
			t.Errorf("text output lacks an ok line for %s:\n%s", c, res.Stdout)
		}
	}
}

func TestDoctorFindsWhatIsBroken(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")

	t.Run("wrong passphrase", func(t *testing.T) {
		e.Vars["PCTOKEN_FILE_PASSPHRASE"] = "not-the-passphrase"
		defer func() { e.Vars["PCTOKEN_FILE_PASSPHRASE"] = harness.Passphrase }()
		r, res := doctor(t, e)
		st, _, fix := r.status("contoso", "store")
		if res.Code != 5 || st != "fail" || !strings.Contains(fix, "PCTOKEN_FILE_PASSPHRASE") {
			t.Fatalf("exit %d, store %s (fix %q)\n%s", res.Code, st, fix, res.Stdout)
		}
		if st, _, _ := r.status("contoso", "refresh"); st != "skip" {
			t.Fatalf("refresh with an unreadable store: %s", st)
		}
		if st, _, _ := r.status("contoso", "tls"); st != "ok" {
			t.Fatalf("tls: %s", st)
		}
	})

	t.Run("unsafe folder", func(t *testing.T) {
		dir := filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper")
		if err := os.Chmod(dir, 0o770); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		r, res := doctor(t, e)
		st, detail, fix := r.status("", "config folder")
		if res.Code != 5 || st != "fail" || !strings.Contains(fix, "chmod go-w "+dir) || !strings.Contains(detail, "writable by group or others") {
			t.Fatalf("exit %d, config folder %s: %s (fix %q)", res.Code, st, detail, fix)
		}
	})

	t.Run("unreachable authority", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now: connections are refused
		old := e.Vars["PCTOKEN_AUTHORITY_HOST"]
		e.Vars["PCTOKEN_AUTHORITY_HOST"] = "https://" + addr
		defer func() { e.Vars["PCTOKEN_AUTHORITY_HOST"] = old }()
		r, res := doctor(t, e)
		if st, detail, _ := r.status("contoso", "tls"); res.Code != 4 || st != "fail" || !strings.Contains(detail, "failed to reach the authority") {
			t.Fatalf("exit %d, tls %s: %s", res.Code, st, detail)
		}
		if st, _, _ := r.status("contoso", "refresh"); st != "skip" {
			t.Fatalf("refresh with no authority: %s", st)
		}
	})

	t.Run("revoked refresh token", func(t *testing.T) {
		e.Sim.RevokeRefreshTokens()
		r, res := doctor(t, e)
		st, detail, fix := r.status("contoso", "refresh")
		if res.Code != 3 || st != "fail" || !strings.Contains(detail, "AADSTS50173") || !strings.Contains(fix, "pctoken-helper consent --profile contoso") {
			t.Fatalf("exit %d, refresh %s: %s (fix %q)", res.Code, st, detail, fix)
		}
		// The text output carries the same, with the fix on its own line.
		res2 := e.Run("doctor")
		if res2.Code != 3 || !strings.Contains(res2.Stdout, "fail  refresh") || !strings.Contains(res2.Stdout, "fix: pctoken-helper consent --profile contoso") {
			t.Fatalf("text: exit %d\n%s", res2.Code, res2.Stdout)
		}
	})

	t.Run("unknown profile", func(t *testing.T) {
		r, res := doctor(t, e, "--profile", "contosso")
		if st, detail, _ := r.status("contosso", "profile"); res.Code != 2 || st != "fail" || !strings.Contains(detail, "did you mean contoso?") {
			t.Fatalf("exit %d, profile %s: %s", res.Code, st, detail)
		}
	})
}

func TestDoctorWithNoProfile(t *testing.T) {
	e := newEnv(t)
	r, res := doctor(t, e)
	if st, _, fix := r.status("", "profiles"); res.Code != 3 || st != "fail" || !strings.Contains(fix, "--client-id") {
		t.Fatalf("exit %d, profiles %s (fix %q)", res.Code, st, fix)
	}
}

// TestDoctorClockSkew puts a TLS proxy whose answers carry a Date ten minutes in the
// past in front of the simulator: doctor reports this machine's clock as ahead.
func TestDoctorClockSkew(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	target, err := url.Parse(e.Sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = e.Sim.HTTPClient().Transport
	rp.ModifyResponse = func(r *http.Response) error {
		r.Header.Set("Date", time.Now().Add(-10*time.Minute).UTC().Format(http.TimeFormat))
		return nil
	}
	proxy := httptest.NewTLSServer(rp)
	defer proxy.Close()
	// Trust the simulator's CA and the proxy's certificate.
	ca, err := os.ReadFile(e.Sim.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bundle, append(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw})...), 0o600)
	e.Vars["SSL_CERT_FILE"] = bundle
	e.Vars["PCTOKEN_AUTHORITY_HOST"] = proxy.URL

	r, res := doctor(t, e)
	st, detail, fix := r.status("contoso", "clock")
	if res.Code != 5 || st != "fail" || !strings.Contains(detail, "ahead of the identity provider's") || !strings.Contains(fix, "synchronise the clock") {
		t.Fatalf("exit %d, clock %s: %s (fix %q)\n%s", res.Code, st, detail, fix, res.Stdout)
	}
	if st, _, _ := r.status("contoso", "tls"); st != "ok" {
		t.Fatalf("tls through the proxy: %s", st)
	}
}

// TestDoctorInCIMode: with PCTOKEN_REFRESH_TOKEN and no saved profile, doctor checks
// the variable's token with a live refresh.
func TestDoctorInCIMode(t *testing.T) {
	e := newEnv(t)
	e.Vars["PCTOKEN_REFRESH_TOKEN"] = rawRefreshToken(t, e)
	r, res := doctor(t, e)
	if res.Code != 0 || !r.OK {
		t.Fatalf("doctor in CI mode: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if st, detail, _ := r.status("default", "store"); st != "ok" || !strings.Contains(detail, "PCTOKEN_REFRESH_TOKEN") {
		t.Fatalf("store: %s %s", st, detail)
	}
	if st, _, _ := r.status("default", "refresh"); st != "ok" {
		t.Fatalf("refresh: %s\n%s", st, res.Stdout)
	}
}

// rawRefreshToken signs the simulator's user in through the device-code flow, as a
// CI bootstrap would, and returns the refresh token a CI secret would hold.
func rawRefreshToken(t *testing.T, e *env) string {
	t.Helper()
	e.Sim.ApproveDeviceCodes(true)
	c := e.Sim.HTTPClient()
	post := func(path string, form url.Values) map[string]any {
		resp, err := c.PostForm(e.Sim.URL()+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	dc := post("/organizations/oauth2/v2.0/devicecode", url.Values{"client_id": {entrasim.PublicClientID},
		"scope": {"https://api.partnercenter.microsoft.com/user_impersonation openid profile offline_access"}})
	code, _ := dc["device_code"].(string)
	for range 10 {
		tok := post("/organizations/oauth2/v2.0/token", url.Values{
			"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id":   {entrasim.PublicClientID},
			"device_code": {code},
		})
		if rt, _ := tok["refresh_token"].(string); rt != "" {
			return rt
		}
		if tok["error"] != "authorization_pending" {
			t.Fatalf("device code: %v", tok["error"])
		}
	}
	t.Fatal("the device code was never approved")
	return ""
}
