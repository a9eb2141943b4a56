package tenants

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// mixedState is the state of the n-th of many customers: mostly reachable, the rest
// spread over every class.
func mixedState(n int) (code int, status string, rel string) {
	switch n % 20 {
	case 1:
		return 65001, "consent_missing", "active"
	case 2:
		return 50020, "no_delegated_access", "expired"
	case 3:
		return 50020, "no_delegated_access", "terminated"
	case 4:
		return 50076, "mfa_required", "active"
	case 5:
		return 53003, "blocked_by_policy", "active"
	case 6:
		return 700016, "app_unknown", "active"
	}
	if n == 7 { // one tenant failing with 503 on every try: retries cost time
		return 90033, "transient", "active"
	}
	return 0, "ok", "active"
}

// TestThousandCustomers is the measure: 1,000 customer tenants in mixed states,
// listed across pages, fanned out into get --request, and checked in one run.
func TestThousandCustomers(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 redemptions, twice")
	}
	const n = 1000
	e := newEnv(t)
	var cs []entrasim.Customer
	for i := range n {
		code, _, rel := mixedState(i)
		cs = append(cs, entrasim.Customer{
			TenantID: customerID(i), Name: "Customer " + customerID(i)[24:], FailCode: code,
			Relationships: []entrasim.Relationship{{Status: rel, EndDateTime: time.Now().Add(200 * 24 * time.Hour), AutoExtendDuration: "P180D", RoleIDs: []string{globalReader}}},
		})
	}
	e.Sim.AddCustomers(cs...)

	start := time.Now()
	r := run(t, e, "", "tenants", "-o", "json").mustCode(t, 0)
	listed := time.Since(start)
	if ts := decodeTenants(t, r.stdout); len(ts) != n {
		t.Fatalf("%d tenants listed, want %d", len(ts), n)
	}
	if pages := e.Sim.APIStats().Requests[entrasim.APIGraph]; pages != n/100 {
		t.Errorf("%d pages, want %d", pages, n/100)
	}

	// The fan-out: every tenant answered, with a token or its classified error.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	list := e.Command(ctx, "tenants", "-o", "ndjson", "--scope", "graph")
	list.Dir = t.TempDir()
	get := e.Command(ctx, "get", "--request", "-")
	get.Dir = list.Dir
	pipe, err := list.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	get.Stdin = pipe
	var out bytes.Buffer
	get.Stdout = &out
	start = time.Now()
	if err := list.Start(); err != nil {
		t.Fatal(err)
	}
	if err := get.Start(); err != nil {
		t.Fatal(err)
	}
	if err := list.Wait(); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := get.Wait(); !errorsAs(err, &ee) {
		t.Fatalf("get --request: %v, want a failure exit", err)
	}
	fanned := time.Since(start)
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	answered := map[string]bool{}
	for sc.Scan() {
		var a struct {
			ID          string `json:"id"`
			AccessToken string `json:"access_token"`
			Error       *struct {
				AADSTS string `json:"aadsts"`
			} `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		i := indexOf(a.ID)
		code, _, _ := mixedState(i)
		if (code == 0) != (a.AccessToken != "") || (code != 0 && (a.Error == nil || !strings.HasSuffix(a.Error.AADSTS, itoa(code)))) {
			t.Errorf("tenant %d: %s", i, sc.Text()[:min(len(sc.Text()), 200)])
		}
		answered[a.ID] = true
	}
	if len(answered) != n {
		t.Fatalf("%d answers, want %d", len(answered), n)
	}

	start = time.Now()
	r = run(t, e, "", "check", "--all-tenants", "--scope", "graph", "-o", "json", "--force-refresh")
	checked := time.Since(start)
	rep := decodeCheck(t, r.stdout)
	if len(rep.Results) != n {
		t.Fatalf("%d rows", len(rep.Results))
	}
	for _, row := range rep.Results {
		_, status, _ := mixedState(indexOf(row.Tenant))
		if row.Status != status {
			t.Errorf("%s: %s, want %s", row.Tenant, row.Status, status)
		}
	}
	t.Logf("1,000 customers: tenants %v (10 pages), tenants | get --request %v, check --all-tenants --force-refresh %v (exit %d)", listed.Round(time.Millisecond), fanned.Round(time.Millisecond), checked.Round(time.Millisecond), r.code)
}

func indexOf(tenantID string) int {
	n := 0
	for _, c := range tenantID[24:] {
		n = n*10 + int(c-'0')
	}
	return n
}

func itoa(n int) string { return strings.TrimLeft(customerID(n)[24:], "0") }
