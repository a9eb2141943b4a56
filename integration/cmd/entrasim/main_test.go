package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// runMainEnv makes the test binary run main, so that the tests can signal a real process.
const runMainEnv = "ENTRASIM_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startCommand runs the command and returns its KEY=value settings.
func startCommand(t *testing.T, args ...string) (*exec.Cmd, map[string]string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	settings := map[string]string{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		settings[k] = v
		if k == "ENTRASIM_CERT_CLIENT_ID" {
			break
		}
	}
	if settings["ENTRASIM_URL"] == "" {
		_ = cmd.Wait()
		t.Fatalf("no settings printed; stderr: %s", stderr)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return cmd, settings, stderr
}

func clientFor(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatal("ca file holds no certificate")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
}

func TestCommandServesAndStopsOnSignal(t *testing.T) {
	dir := t.TempDir()
	cmd, env, stderr := startCommand(t, "-addr", "127.0.0.1:0", "-dir", dir, "-lifetime", "10m", "-v")
	base := env["ENTRASIM_URL"]
	if env["ENTRASIM_CA_FILE"] != filepath.Join(dir, entrasim.CAFileName) || env["ENTRASIM_HOME_TENANT"] != entrasim.HomeTenantID ||
		env["ENTRASIM_CLIENT_SECRET"] != entrasim.ClientSecret {
		t.Fatalf("settings %v", env)
	}
	hc := clientFor(t, env["ENTRASIM_CA_FILE"])
	post := func(path string, form url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := hc.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}

	// A device code sign-in approved through the control API by "another process".
	if status, _ := post("/_sim/autoapprove?on=0", nil); status != 200 {
		t.Fatalf("autoapprove: %d", status)
	}
	status, dc := post("/organizations/oauth2/v2.0/devicecode", url.Values{"client_id": {entrasim.PublicClientID}, "scope": {entrasim.GraphScope + " offline_access"}})
	if status != 200 {
		t.Fatalf("devicecode: %d %v", status, dc)
	}
	poll := url.Values{"grant_type": {"device_code"}, "client_id": {entrasim.PublicClientID}, "device_code": {dc["device_code"].(string)}}
	if status, v := post("/organizations/oauth2/v2.0/token", poll); status != 400 || v["error"] != "authorization_pending" {
		t.Fatalf("poll before approval: %d %v", status, v)
	}
	if status, _ := post("/_sim/approve?user_code="+dc["user_code"].(string), nil); status != 200 {
		t.Fatalf("approve: %d", status)
	}
	status, tok := post("/organizations/oauth2/v2.0/token", poll)
	if status != 200 || tok["expires_in"] != float64(600) || tok["refresh_token"] == "" {
		t.Fatalf("token: %d %v", status, tok)
	}

	// Fault injection reaches the token endpoint.
	post("/_sim/fail?n=1&status=503", nil)
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {entrasim.PublicClientID},
		"refresh_token": {tok["refresh_token"].(string)}, "scope": {entrasim.GraphScope}}
	if status, _ := post("/"+entrasim.HomeTenantID+"/oauth2/v2.0/token", refresh); status != 503 {
		t.Errorf("after /_sim/fail: %d", status)
	}
	if status, _ := post("/"+entrasim.HomeTenantID+"/oauth2/v2.0/token", refresh); status != 200 {
		t.Errorf("after the failure: %d", status)
	}
	resp, err := hc.Get(base + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st entrasim.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Requests["token"] != 4 || st.RefreshTokensRedeemed != 1 {
		t.Errorf("stats %+v %v", st, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if strings.Contains(stderr.String(), tok["refresh_token"].(string)[:40]) {
		t.Error("the request log shows a refresh token")
	}
	if !strings.Contains(stderr.String(), "grant=refresh_token") {
		t.Errorf("-v logs no requests: %s", stderr)
	}
	// Files in -dir stay for the caller.
	if _, err := os.Stat(filepath.Join(dir, entrasim.CertClientFileName)); err != nil {
		t.Error(err)
	}
}

func TestCommandTempDirRemovedOnInterrupt(t *testing.T) {
	cmd, env, stderr := startCommand(t, "-addr", "127.0.0.1:0")
	if _, err := os.Stat(env["ENTRASIM_CA_FILE"]); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v; stderr: %s", err, stderr)
	}
	if _, err := os.Stat(env["ENTRASIM_CA_FILE"]); !os.IsNotExist(err) {
		t.Errorf("temporary folder left behind: %v", err)
	}
}

func TestCommandUsage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"-nope"}, 2},
		{[]string{"extra"}, 2},
		{[]string{"-h"}, 0},
		{[]string{"-addr", "0.0.0.0:0"}, 1},
		{[]string{"-addr", "127.0.0.1:0", "-dir", t.TempDir()}, 0}, // starts, then stops: ctx is done
	} {
		var stdout, stderr bytes.Buffer
		if got := run(ctx, tc.args, &stdout, &stderr); got != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr %s", tc.args, got, tc.code, stderr.String())
		}
		if tc.code != 0 && stdout.Len() != 0 {
			t.Errorf("%v: stdout %q", tc.args, stdout.String())
		}
	}
}
