// Package tenants tests the tenants and check commands with the real binary against
// the simulator's Entra ID, Microsoft Graph and Partner Center: paging, the refusal of
// links to another host, both sources, the fan-out pipe into get --request, every
// class of check with its code, remedy and exit code, and the progress bar (on a
// terminal only).
package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// Role template ids the simulated relationships hold.
const (
	globalReader  = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
	exchangeAdmin = "29232cdf-9323-42fd-ade2-1d097af3e4de"
)

// customerID is the id of the n-th generated customer tenant.
func customerID(n int) string { return fmt.Sprintf("c0570000-0000-4000-8000-%012d", n) }

// newEnv is a consented environment whose Graph and Partner Center are the simulator's.
func newEnv(t *testing.T) *harness.Env {
	t.Helper()
	e := harness.New(t)
	e.Vars["PCTOKEN_GRAPH_URL"] = e.Sim.URL()
	e.Vars["PCTOKEN_PARTNER_CENTER_URL"] = e.Sim.URL()
	run(t, e, "", "consent", "--flow", "device-code").mustCode(t, 0)
	return e
}

type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) mustCode(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("pctoken-helper %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// run runs the helper in a temporary working folder, with stdin.
func run(t *testing.T, e *harness.Env, stdin string, args ...string) result {
	t.Helper()
	if len(args) > 0 && args[0] == "consent" {
		e.Sim.ApproveDeviceCodes(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.Command(ctx, args...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pctoken-helper %s: still running after 2 minutes\nstderr: %s", strings.Join(args, " "), errb.String())
	}
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// tenantJSON is one tenant of tenants -o json.
type tenantJSON struct {
	ID            string    `json:"tenant_id"`
	Name          string    `json:"name"`
	Domain        string    `json:"domain"`
	Status        string    `json:"status"`
	EndsAt        time.Time `json:"end_date_time"`
	AutoExtend    bool      `json:"auto_extend"`
	Roles         []string  `json:"roles"`
	Relationships int       `json:"relationships"`
	Source        string    `json:"source"`
}

func decodeTenants(t *testing.T, out string) []tenantJSON {
	t.Helper()
	var ts []tenantJSON
	if err := json.Unmarshal([]byte(out), &ts); err != nil {
		t.Fatalf("tenants -o json: %v\n%s", err, out)
	}
	return ts
}

// checkRow is one row of check's output.
type checkRow struct {
	Tenant  string `json:"tenant"`
	Name    string `json:"name"`
	Scope   string `json:"scope"`
	Status  string `json:"status"`
	AADSTS  string `json:"aadsts"`
	Message string `json:"message"`
	Remedy  string `json:"remedy"`
}

type checkReport struct {
	Profile string     `json:"profile"`
	OK      int        `json:"ok"`
	Failed  int        `json:"failed"`
	Results []checkRow `json:"results"`
}

func decodeCheck(t *testing.T, out string) checkReport {
	t.Helper()
	var r checkReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, out)
	}
	return r
}

func osPipe() (*os.File, *os.File, error) { return os.Pipe() }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
