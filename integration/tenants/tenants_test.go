package tenants

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// gdapWorld adds customers covering the relationship states and duplicates:
//
//	0 active, auto-extend, Global Reader
//	1 expired
//	2 terminated
//	3 two relationships: an expired one and an active one ending later (Exchange)
//	4 approvalPending
//	5 active, no auto-extend, ending in 10 days
//	6..n-1 active
func gdapWorld(sim *entrasim.Sim, n int) (now time.Time) {
	now = time.Now().UTC().Truncate(time.Second)
	var cs []entrasim.Customer
	for i := range n {
		c := entrasim.Customer{TenantID: customerID(i), Name: "Customer " + string(rune('A'+i%26)) + strings.Repeat("x", i/26), Domain: "customer" + string(rune('a'+i%26)) + ".onmicrosoft.com"}
		rel := entrasim.Relationship{Status: "active", EndDateTime: now.Add(300 * 24 * time.Hour), AutoExtendDuration: "P180D", RoleIDs: []string{globalReader}}
		switch i {
		case 1:
			rel.Status, rel.EndDateTime = "expired", now.Add(-30*24*time.Hour)
		case 2:
			rel.Status = "terminated"
		case 3:
			old := rel
			old.Status, old.EndDateTime = "expired", now.Add(-5*24*time.Hour)
			rel.RoleIDs = []string{exchangeAdmin}
			c.Relationships = append(c.Relationships, old)
		case 4:
			rel.Status = "approvalPending"
		case 5:
			rel.EndDateTime, rel.AutoExtendDuration = now.Add(10*24*time.Hour), "PT0S"
		}
		c.Relationships = append(c.Relationships, rel)
		cs = append(cs, c)
	}
	sim.AddCustomers(cs...)
	return now
}

func TestTenantsGraphPaging(t *testing.T) {
	e := newEnv(t)
	gdapWorld(e.Sim, 23)
	e.Sim.SetAPIPageSize(5) // 24 relationships: 5 pages

	r := run(t, e, "", "tenants", "-o", "json").mustCode(t, 0)
	ts := decodeTenants(t, r.stdout)
	if len(ts) != 23 {
		t.Fatalf("%d tenants, want 23 (one per customer, duplicates merged)", len(ts))
	}
	if got := e.Sim.APIStats().Requests[entrasim.APIGraph]; got != 5 {
		t.Errorf("Graph got %d requests, want 5 pages", got)
	}
	byID := map[string]tenantJSON{}
	for _, tj := range ts {
		byID[tj.ID] = tj
		if tj.Source != "graph" {
			t.Errorf("tenant %s: source %q", tj.ID, tj.Source)
		}
	}
	want := map[int]struct {
		status string
		ext    bool
		roles  string
		rels   int
	}{
		0: {"active", true, "Global Reader", 1},
		1: {"expired", true, "Global Reader", 1},
		2: {"terminated", true, "Global Reader", 1},
		3: {"active", true, "Exchange Administrator", 2},
		4: {"approvalPending", true, "Global Reader", 1},
		5: {"active", false, "Global Reader", 1},
	}
	for i, w := range want {
		got, ok := byID[customerID(i)]
		if !ok {
			t.Fatalf("tenant %d missing", i)
		}
		if got.Status != w.status || got.AutoExtend != w.ext || strings.Join(got.Roles, ",") != w.roles || got.Relationships != w.rels {
			t.Errorf("tenant %d: %+v, want %+v", i, got, w)
		}
	}
	// Sorted by name, so that two runs diff cleanly.
	for i := 1; i < len(ts); i++ {
		if strings.ToLower(ts[i-1].Name) > strings.ToLower(ts[i].Name) {
			t.Fatalf("not sorted by name: %q before %q", ts[i-1].Name, ts[i].Name)
		}
	}

	// The record for status --warn-days holds every relationship, unmerged.
	b, err := os.ReadFile(filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper", "tenants", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Version       int    `json:"version"`
		Profile       string `json:"profile"`
		Relationships []struct {
			TenantID   string    `json:"tenant_id"`
			Status     string    `json:"status"`
			End        time.Time `json:"end_date_time"`
			AutoExtend string    `json:"auto_extend_duration"`
		} `json:"relationships"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Version != 1 || rec.Profile != "default" || len(rec.Relationships) != 24 {
		t.Fatalf("record: version %d profile %q, %d relationships, want 1, default, 24", rec.Version, rec.Profile, len(rec.Relationships))
	}
	fi, err := os.Stat(filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper", "tenants", "default.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v (%v), want 0600", fi.Mode(), err)
	}

	// The table names the states for people.
	r = run(t, e, "", "tenants").mustCode(t, 0)
	for _, s := range []string{"TENANT", "expired", "terminated", "Exchange Administrator", customerID(5)} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("table lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestTenantsPartnerCenter(t *testing.T) {
	e := newEnv(t)
	gdapWorld(e.Sim, 12)
	e.Sim.AddCustomers(entrasim.Customer{TenantID: customerID(99), Name: "Reseller only", Domain: "reselleronly.onmicrosoft.com"})
	e.Sim.AddCustomers(entrasim.Customer{TenantID: customerID(98), Name: "Not listed", NotInPartnerCenter: true})
	e.Sim.SetAPIPageSize(4) // 13 customers: 4 pages, continuation tokens in links.next

	r := run(t, e, "", "tenants", "--source", "partner-center", "-o", "json").mustCode(t, 0)
	ts := decodeTenants(t, r.stdout)
	if len(ts) != 13 {
		t.Fatalf("%d customers, want 13", len(ts))
	}
	if got := e.Sim.APIStats().Requests[entrasim.APIPartnerCenter]; got != 4 {
		t.Errorf("Partner Center got %d requests, want 4 pages", got)
	}
	found := false
	for _, tj := range ts {
		if tj.Source != "partner-center" || tj.Status != "" {
			t.Errorf("%+v: want source partner-center and no status", tj)
		}
		if tj.ID == customerID(99) {
			found = tj.Domain == "reselleronly.onmicrosoft.com" && tj.Name == "Reseller only"
		}
	}
	if !found {
		t.Errorf("the reseller-only customer is missing or wrong: %s", r.stdout)
	}
	if e.Sim.APIStats().Requests[entrasim.APIGraph] != 0 {
		t.Error("--source partner-center asked Graph")
	}
}

// Partner Center refuses app+user tokens without MFA (401, 900421): a consent is due.
func TestTenantsPartnerCenterNeedsMFA(t *testing.T) {
	e := harness.New(t)
	e.Vars["PCTOKEN_PARTNER_CENTER_URL"] = e.Sim.URL()
	e.Sim.SetAMR([]string{"pwd"})
	run(t, e, "", "consent", "--flow", "device-code").mustCode(t, 0)
	e.Sim.AddCustomers(entrasim.Customer{TenantID: customerID(1), Name: "One"})
	r := run(t, e, "", "tenants", "--source", "partner-center").mustCode(t, 3)
	if !strings.Contains(r.stderr, "900421") || r.stdout != "" {
		t.Errorf("stdout %q, stderr %q: want nothing on stdout and the code 900421", r.stdout, r.stderr)
	}
}

// Without --source, Graph is asked first; when it refuses (403), Partner Center.
func TestTenantsFallsBackToPartnerCenter(t *testing.T) {
	e := newEnv(t)
	gdapWorld(e.Sim, 3)
	e.Sim.DenyAPI(entrasim.APIGraph, true)
	r := run(t, e, "", "tenants", "-o", "json").mustCode(t, 0)
	ts := decodeTenants(t, r.stdout)
	if len(ts) != 3 || ts[0].Source != "partner-center" {
		t.Fatalf("got %+v, want 3 tenants from Partner Center", ts)
	}
	if !strings.Contains(r.stderr, "Authorization_RequestDenied") || !strings.Contains(r.stderr, "Partner Center") {
		t.Errorf("stderr does not say why: %s", r.stderr)
	}
	// Asked for Graph alone, the refusal is the answer (exit 5).
	r = run(t, e, "", "tenants", "--source", "graph").mustCode(t, 5)
	if !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, "hint: grant the app Microsoft Graph's delegated permission DelegatedAdminRelationship.Read.All") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestTenantsRefusesLoopAndForeignHost(t *testing.T) {
	e := newEnv(t)
	gdapWorld(e.Sim, 10)
	e.Sim.SetAPIPageSize(3)

	e.Sim.SetGraphNextLink("loop")
	r := run(t, e, "", "tenants", "-o", "json").mustCode(t, 1)
	if !strings.Contains(r.stderr, "leads back to a page already read") || r.stdout != "" {
		t.Errorf("loop: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if got := e.Sim.APIStats().Requests[entrasim.APIGraph]; got != 2 {
		t.Errorf("loop: %d requests, want 2 (the second page is not read twice)", got)
	}

	e.Sim.SetGraphNextLink("foreign")
	r = run(t, e, "", "tenants", "-o", "json").mustCode(t, 1)
	if !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, "localhost") {
		t.Errorf("foreign: stderr %q", r.stderr)
	}
	if n := e.Sim.APIStats().ForeignHost; n != 0 {
		t.Errorf("%d requests went to the other host: the token followed the link", n)
	}
}

func TestTenantsThrottledAndFailing(t *testing.T) {
	e := newEnv(t)
	gdapWorld(e.Sim, 4)
	e.Sim.FailAPINext(entrasim.APIGraph, 2, 429, time.Second)
	start := time.Now()
	r := run(t, e, "", "tenants", "-o", "json").mustCode(t, 0)
	if len(decodeTenants(t, r.stdout)) != 4 {
		t.Fatalf("after throttling: %s", r.stdout)
	}
	if got := e.Sim.APIStats().Requests[entrasim.APIGraph]; got != 3 {
		t.Errorf("%d requests, want 3 (two throttled, then the page)", got)
	}
	// Retry-After: 1 was honoured twice (a lower bound only: no upper bound is timed).
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("done in %s: Retry-After was not waited for", el)
	}

	e.Sim.FailAPINext(entrasim.APIGraph, 100, 503, 0)
	r = run(t, e, "", "tenants", "--source", "graph").mustCode(t, 4)
	if !strings.Contains(r.stderr, "503") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if got := e.Sim.APIStats().Requests[entrasim.APIGraph]; got-3 > 4 {
		t.Errorf("%d requests for one page: retries are not bounded", got-3)
	}
}

func TestTenantsUsage(t *testing.T) {
	e := harness.New(t)
	e.Vars["PCTOKEN_GRAPH_URL"] = "http://127.0.0.1:1"
	run(t, e, "", "consent", "--flow", "device-code").mustCode(t, 0)
	r := run(t, e, "", "tenants").mustCode(t, 2)
	if !strings.Contains(r.stderr, "PCTOKEN_GRAPH_URL") || !strings.Contains(r.stderr, "https") {
		t.Errorf("stderr: %s", r.stderr)
	}
	run(t, e, "", "tenants", "--source", "nowhere").mustCode(t, 2)
	// A request line is one token: one resource.
	e.Vars["PCTOKEN_GRAPH_URL"] = e.Sim.URL()
	r = run(t, e, "", "tenants", "-o", "ndjson", "--scope", "graph,arm").mustCode(t, 2)
	if !strings.Contains(r.stderr, "one resource") || r.stdout != "" {
		t.Errorf("two resources: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

// A failure of the refresh token is not Graph refusing: no fallback, exit 3.
func TestTenantsWithoutConsent(t *testing.T) {
	e := harness.New(t)
	e.Vars["PCTOKEN_GRAPH_URL"] = e.Sim.URL()
	r := run(t, e, "", "tenants").mustCode(t, 3)
	if strings.Contains(r.stderr, "instead") || !strings.Contains(r.stderr, "hint: pctoken-helper consent") || r.stdout != "" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if n := e.Sim.APIStats().Requests; len(n) != 0 {
		t.Errorf("API requests without a token: %v", n)
	}
}
