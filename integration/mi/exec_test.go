package mi

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecEnvironment: the child gets IDENTITY_ENDPOINT and a fresh 256-bit
// IDENTITY_HEADER, none of the other sources' variables and none of the helper's
// secrets; its other variables pass through; the endpoint is gone once it exits.
func TestExecEnvironment(t *testing.T) {
	e := newEnv(t)
	extra := map[string]string{
		childVar:                     "env",
		"MSI_ENDPOINT":               "http://169.254.169.254/msi",
		"MSI_SECRET":                 "msi-secret",
		"IMDS_ENDPOINT":              "http://169.254.169.254",
		"IDENTITY_SERVER_THUMBPRINT": "ABCDEF",
		"IDENTITY_ENDPOINT":          "http://127.0.0.1:1/old",
		"IDENTITY_HEADER":            "old",
		"PCTOKEN_CLIENT_SECRET":      "test-only-client-secret",
		"PCTOKEN_REFRESH_TOKEN":      "",
		"MI_KEEP":                    "kept",
	}
	var seen []map[string]string
	for range 2 {
		res := e.run(t, extra, "mi", "exec", "-v", "--", self(t))
		if res.Code != 0 {
			t.Fatalf("exit %d\nstderr: %s", res.Code, res.Stderr)
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
			t.Fatalf("child output %q: %v", res.Stdout, err)
		}
		seen = append(seen, got)
		for _, k := range []string{"MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT", "PCTOKEN_CLIENT_SECRET", "PCTOKEN_FILE_PASSPHRASE", "PCTOKEN_REFRESH_TOKEN"} {
			if v, ok := got[k]; ok {
				t.Errorf("child got %s=%q", k, v)
			}
		}
		if got["MI_KEEP"] != "kept" {
			t.Errorf("MI_KEEP = %q, want it passed through", got["MI_KEEP"])
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got["IDENTITY_HEADER"]) {
			t.Errorf("IDENTITY_HEADER %q is not 256 random bits in hex", got["IDENTITY_HEADER"])
		}
		u, err := url.Parse(got["IDENTITY_ENDPOINT"])
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Path != "/pctoken-helper/contoso/home" || u.RawQuery != "" {
			t.Fatalf("IDENTITY_ENDPOINT %q", got["IDENTITY_ENDPOINT"])
		}
		if c, err := net.DialTimeout("tcp", u.Host, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("the endpoint %s still accepts connections after mi exec returned", u.Host)
		}
		if strings.Contains(res.Stderr, got["IDENTITY_HEADER"]) {
			t.Errorf("stderr shows the header secret")
		}
	}
	if seen[0]["IDENTITY_HEADER"] == seen[1]["IDENTITY_HEADER"] {
		t.Errorf("two runs got the same secret")
	}
}

// TestExecExitStatus: mi exec exits with the child's code; 127 when it cannot be found.
func TestExecExitStatus(t *testing.T) {
	e := newEnv(t)
	for _, code := range []string{"0", "1", "7", "3", "200"} {
		res := e.run(t, map[string]string{childVar: "exit", "MI_CHILD_CODE": code}, "mi", "exec", "--", self(t))
		if res.Stdout != "" || code != strconv.Itoa(res.Code) {
			t.Errorf("child exit %s: helper exit %d, stdout %q, stderr %q", code, res.Code, res.Stdout, res.Stderr)
		}
	}
	res := e.run(t, nil, "mi", "exec", "--", "pctoken-no-such-command")
	if res.Code != 127 || !strings.Contains(res.Stderr, "pctoken-no-such-command") {
		t.Errorf("missing command: exit %d, stderr %q", res.Code, res.Stderr)
	}
	res = e.run(t, nil, "mi", "exec")
	if res.Code != 2 {
		t.Errorf("no command: exit %d, want 2 (stderr %q)", res.Code, res.Stderr)
	}
}

// TestExecForwardsSignals: SIGINT and SIGTERM sent to mi exec reach the child; the
// helper exits with the child's status, 128+signal when the signal killed it.
func TestExecForwardsSignals(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name string
		sig  syscall.Signal
		die  bool
		want int
		out  string
	}{
		{"SIGTERM caught", syscall.SIGTERM, false, 40 + 15, "got 15"},
		{"SIGINT caught", syscall.SIGINT, false, 40 + 2, "got 2"},
		{"SIGTERM kills", syscall.SIGTERM, true, 128 + 15, ""},
		{"SIGINT kills", syscall.SIGINT, true, 128 + 2, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			extra := map[string]string{childVar: "wait"}
			if c.die {
				extra["MI_CHILD_DIE"] = "1"
			}
			cmd := e.command(ctx, extra, "mi", "exec", "--", self(t))
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(stdout)
			line, err := r.ReadString('\n')
			endpoint, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
			u, perr := url.Parse(endpoint)
			if err != nil || !ok || perr != nil || u.Host == "" {
				t.Fatalf("child said %q, %v; stderr %s", line, err, stderr.String())
			}
			// Only the helper is signalled, as by kill(1) or a CI runner stopping a step.
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := readAll(r)
			err = cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.want || strings.TrimSpace(rest) != c.out {
				t.Errorf("exit %d, child said %q; want exit %d and %q\nstderr: %s", code, rest, c.want, c.out, stderr.String())
			}
			if conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second); err == nil {
				conn.Close()
				t.Errorf("the endpoint %s still accepts connections after mi exec returned", u.Host)
			}
		})
	}
}

func readAll(r *bufio.Reader) (string, error) {
	var b strings.Builder
	_, err := r.WriteTo(&b)
	return b.String(), err
}
