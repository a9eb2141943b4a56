package tenants

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type warning struct {
	Profile  string `json:"profile"`
	Kind     string `json:"kind"`
	Tenant   string `json:"tenant"`
	DaysLeft int    `json:"days_left"`
	Message  string `json:"message"`
	Remedy   string `json:"remedy"`
}

func decodeWarnings(t *testing.T, out string) []warning {
	t.Helper()
	var doc struct {
		Profiles []json.RawMessage `json:"profiles"`
		Warnings []warning         `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Profiles) == 0 || doc.Warnings == nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	return doc.Warnings
}

// status --warn-days fires for a relationship ending soon without auto-extend (as the
// last tenants saw it) and for a refresh token near its 90 days, and stays quiet
// otherwise.
func TestStatusWarnDays(t *testing.T) {
	e := newEnv(t)
	gdapWorld(e.Sim, 8) // customer 5 ends in 10 days without auto-extend

	r := run(t, e, "", "status", "--warn-days", "30").mustCode(t, 0)
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("no tenants listed yet, fresh token: %s", r.stderr)
	}
	run(t, e, "", "tenants").mustCode(t, 0)

	r = run(t, e, "", "status", "--warn-days", "30").mustCode(t, 3)
	if !strings.Contains(r.stderr, customerID(5)) || !strings.Contains(r.stderr, "does not extend itself") || strings.Count(r.stderr, "warning:") != 1 {
		t.Errorf("stderr: %s", r.stderr)
	}
	if !strings.Contains(r.stdout, "profile") {
		t.Errorf("the status itself is missing: %s", r.stdout)
	}
	run(t, e, "", "status", "--warn-days", "5").mustCode(t, 0)

	r = run(t, e, "", "status", "--warn-days", "5", "-o", "json").mustCode(t, 0)
	if ws := decodeWarnings(t, r.stdout); len(ws) != 0 {
		t.Errorf("warnings %+v", ws)
	}

	// The refresh token was last rotated 85 days ago.
	path := filepath.Join(e.Vars["XDG_CONFIG_HOME"], "pctoken-helper", "profiles", "default.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	p["rotated_at"] = time.Now().Add(-85 * 24 * time.Hour).UTC().Format(time.RFC3339)
	b, _ = json.Marshal(p)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, e, "", "status", "--warn-days", "7", "-o", "json").mustCode(t, 3)
	ws := decodeWarnings(t, r.stdout)
	if len(ws) != 1 || ws[0].Kind != "refresh_token" || ws[0].DaysLeft != 5 || !strings.Contains(ws[0].Remedy, "pctoken-helper renew --profile default") {
		t.Errorf("warnings %+v", ws)
	}
	r = run(t, e, "", "status", "--warn-days", "30", "-o", "json").mustCode(t, 3)
	if ws := decodeWarnings(t, r.stdout); len(ws) != 2 || ws[1].Kind != "gdap_relationship" || ws[1].Tenant != customerID(5) || ws[1].DaysLeft != 10 {
		t.Errorf("warnings %+v", ws)
	}
	run(t, e, "", "status", "--warn-days", "-1").mustCode(t, 2)
}
