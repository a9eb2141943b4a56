package tenants

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/internal/testpty"
)

// classWorld is one customer tenant per class of check, with the AADSTS code Entra
// answers there.
var classWorld = []struct {
	n      int
	code   int
	status string
	aadsts string
	exit   int
	remedy string
}{
	{0, 0, "ok", "", 0, ""},
	{1, 65001, "consent_missing", "AADSTS65001", 3, "/adminconsent?client_id=" + entrasim.PublicClientID},
	{2, 90099, "consent_missing", "AADSTS90099", 3, "/adminconsent?client_id="},
	{3, 50020, "no_delegated_access", "AADSTS50020", 5, "GDAP relationship"},
	{4, 50076, "mfa_required", "AADSTS50076", 3, "pctoken-helper consent --profile default"},
	{5, 50078, "mfa_required", "AADSTS50078", 3, "pctoken-helper consent --profile default"},
	{6, 50079, "mfa_required", "AADSTS50079", 3, "pctoken-helper consent --profile default"},
	{7, 70043, "mfa_required", "AADSTS70043", 3, "pctoken-helper consent --profile default"},
	{8, 53003, "blocked_by_policy", "AADSTS53003", 5, "Conditional Access"},
	{9, 700016, "app_unknown", "AADSTS700016", 5, "/adminconsent?client_id="},
	{10, 7000112, "app_unknown", "AADSTS7000112", 5, "enables it"},
	{11, 90033, "transient", "AADSTS90033", 4, "try again later"},
}

func addClassWorld(sim *entrasim.Sim) {
	for _, c := range classWorld {
		sim.AddCustomers(entrasim.Customer{
			TenantID: customerID(c.n), Name: "Class " + c.status, FailCode: c.code,
			Relationships: []entrasim.Relationship{{Status: "active", EndDateTime: time.Now().Add(100 * 24 * time.Hour), RoleIDs: []string{globalReader}}},
		})
	}
}

func TestCheckEveryClass(t *testing.T) {
	e := newEnv(t)
	addClassWorld(e.Sim)
	args := []string{"check", "-o", "json", "--scope", "graph", "--scope", "arm"}
	for _, c := range classWorld {
		args = append(args, "--tenant", customerID(c.n))
	}
	r := run(t, e, "", args...)
	rep := decodeCheck(t, r.stdout)
	if len(rep.Results) != 2*len(classWorld) || rep.OK != 2 || rep.Failed != 2*(len(classWorld)-1) {
		t.Fatalf("%d rows, %d ok, %d failed: %s", len(rep.Results), rep.OK, rep.Failed, r.stdout)
	}
	for i, row := range rep.Results {
		want := classWorld[i/2]
		scope := []string{"https://graph.microsoft.com/.default", "https://management.azure.com/user_impersonation"}[i%2]
		if row.Tenant != customerID(want.n) || row.Scope != scope {
			t.Fatalf("row %d is %s %s, want %s %s (the order of --tenant, then --scope)", i, row.Tenant, row.Scope, customerID(want.n), scope)
		}
		if row.Status != want.status || row.AADSTS != want.aadsts || !strings.Contains(row.Remedy, want.remedy) {
			t.Errorf("tenant %d (%d): %+v, want status %s, %s, a remedy with %q", want.n, want.code, row, want.status, want.aadsts, want.remedy)
		}
		if want.status == "consent_missing" && !strings.Contains(row.Remedy, e.Sim.URL()+"/"+customerID(want.n)+"/adminconsent") {
			t.Errorf("consent remedy is not that tenant's admin-consent URL: %s", row.Remedy)
		}
	}
	// The first failing row is consent_missing: exit 3.
	r.mustCode(t, 3)
	if strings.Contains(r.stderr, "error:") {
		t.Errorf("the rows are the report; stderr repeats an error: %s", r.stderr)
	}

	// Exit code of the first failing row, in the order given.
	for _, c := range classWorld[1:] {
		last := customerID(1) // a failure after the one that decides the exit code
		if c.n == 1 {
			last = customerID(3)
		}
		r := run(t, e, "", "check", "-o", "ndjson", "--scope", "graph", "--tenant", customerID(0), "--tenant", customerID(c.n), "--tenant", last, "--tenant", strings.ToUpper(last))
		r.mustCode(t, c.exit)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 {
			t.Fatalf("ndjson: %d lines, want 3 (a tenant named twice is checked once):\n%s", len(lines), r.stdout)
		}
		var row checkRow
		if err := json.Unmarshal([]byte(lines[1]), &row); err != nil || row.Status != c.status {
			t.Errorf("ndjson line 2: %s (%v), want status %s", lines[1], err, c.status)
		}
	}
	run(t, e, "", "check", "--tenant", customerID(0), "--scope", "graph").mustCode(t, 0)

	// The table is for people: one row each, the code and the fix.
	r = run(t, e, "", "check", "--tenant", customerID(0), "--tenant", customerID(3), "--scope", "graph")
	r.mustCode(t, 5)
	for _, s := range []string{"STATUS", "no_delegated_access", "AADSTS50020", "GDAP relationship", "2 checked, 1 ok, 1 failing"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("table lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"check"},
		{"check", "--all-tenants", "--tenant", customerID(1)},
		{"check", "--tenant", "a/b"},
		{"check", "--tenant", customerID(1), "--parallel", "0"},
		{"check", "--tenant", customerID(1), "-o", "yaml"},
	} {
		r := run(t, e, "", args...).mustCode(t, 2)
		if r.stdout != "" {
			t.Errorf("%v: stdout %q", args, r.stdout)
		}
	}
}

// check --all-tenants over every state: a relationship that ended names itself in
// the remedy, and the JSON is the same from one run to the next.
func TestCheckAllTenants(t *testing.T) {
	e := newEnv(t)
	now := gdapWorld(e.Sim, 8)
	_ = now
	// Entra answers 50020 where no relationship grants the user.
	for _, n := range []int{1, 2, 4} {
		e.Sim.SetTenantFailure(customerID(n), 50020)
	}
	e.Sim.SetAPIPageSize(3)
	r := run(t, e, "", "check", "--all-tenants", "-o", "json", "--scope", "graph")
	r.mustCode(t, 5)
	rep := decodeCheck(t, r.stdout)
	if len(rep.Results) != 8 || rep.Failed != 3 {
		t.Fatalf("%d rows, %d failed: %s", len(rep.Results), rep.Failed, r.stdout)
	}
	for _, row := range rep.Results {
		switch row.Tenant {
		case customerID(1):
			if row.Status != "no_delegated_access" || !strings.Contains(row.Remedy, "the last one is expired, ended") {
				t.Errorf("expired relationship: %+v", row)
			}
		case customerID(2):
			if !strings.Contains(row.Remedy, "terminated") {
				t.Errorf("terminated relationship: %+v", row)
			}
		case customerID(4):
			if !strings.Contains(row.Remedy, "is approvalPending: an administrator of the customer approves it") {
				t.Errorf("pending relationship: %+v", row)
			}
		}
		if row.Name == "" {
			t.Errorf("row without the tenant's name: %+v", row)
		}
	}
	again := run(t, e, "", "check", "--all-tenants", "-o", "json", "--scope", "graph")
	if again.stdout != r.stdout {
		t.Errorf("two runs differ:\n%s\n---\n%s", r.stdout, again.stdout)
	}
}

// tenants -o ndjson | get --request -: two processes joined by a real pipe; every
// tenant is answered, with a token or a classified error.
func TestFanOutPipe(t *testing.T) {
	e := newEnv(t)
	addClassWorld(e.Sim)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	list := e.Command(ctx, "tenants", "-o", "ndjson", "--scope", "graph")
	get := e.Command(ctx, "get", "--request", "-")
	list.Dir, get.Dir = dir, dir
	pr, pw, err := osPipe()
	if err != nil {
		t.Fatal(err)
	}
	list.Stdout, get.Stdin = pw, pr
	var out, listErr, getErr bytes.Buffer
	list.Stderr, get.Stdout, get.Stderr = &listErr, &out, &getErr
	if err := list.Start(); err != nil {
		t.Fatal(err)
	}
	if err := get.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pr.Close()
	if err := list.Wait(); err != nil {
		t.Fatalf("tenants: %v\n%s", err, listErr.String())
	}
	err = get.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("get --request: %v, want a non-zero exit for the failing tenants\n%s", err, getErr.String())
	}
	answers := map[string]map[string]any{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var a map[string]any
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("answer: %v: %s", err, sc.Text())
		}
		id, _ := a["id"].(string)
		answers[id] = a
	}
	if len(answers) != len(classWorld) {
		t.Fatalf("%d answers, want %d:\n%s", len(answers), len(classWorld), out.String())
	}
	for _, c := range classWorld {
		a := answers[customerID(c.n)]
		if c.code == 0 {
			if tok, _ := a["access_token"].(string); tok == "" || a["tenant_id"] != customerID(c.n) {
				t.Errorf("tenant %d: %v, want a token for it", c.n, a)
			}
			continue
		}
		errObj, _ := a["error"].(map[string]any)
		if errObj == nil || errObj["aadsts"] != c.aadsts {
			t.Errorf("tenant %d: %v, want an error with %s", c.n, a, c.aadsts)
		}
	}
}

// The progress bar is drawn on a terminal, never on a pipe, and in colour only
// without NO_COLOR.
func TestCheckProgressBar(t *testing.T) {
	e := newEnv(t)
	gdapWorld(e.Sim, 6)
	r := run(t, e, "", "check", "--all-tenants", "--scope", "graph").mustCode(t, 0)
	if strings.Contains(r.stderr, "checking [") || strings.Contains(r.stderr, "\r") {
		t.Errorf("progress on a pipe: %q", r.stderr)
	}

	for _, noColor := range []bool{false, true} {
		p := testpty.Open(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := e.Command(ctx, "check", "--all-tenants", "--scope", "graph")
		cmd.Dir = t.TempDir()
		if noColor {
			cmd.Env = append(cmd.Env, "NO_COLOR=1")
		}
		cmd.Env = append(cmd.Env, "TERM=xterm")
		var out bytes.Buffer
		cmd.Stdout = &out
		p.Attach(cmd, false)
		cmd.Stderr = p.Slave
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var tty bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			io.Copy(&tty, p.Master)
		}()
		err := cmd.Wait()
		cancel()
		p.Slave.Close()
		p.Master.SetReadDeadline(time.Now().Add(5 * time.Second))
		<-read
		if err != nil {
			t.Fatalf("check on a terminal: %v\n%s", err, tty.String())
		}
		got := tty.String()
		if !strings.Contains(got, "checking [") || !strings.Contains(got, "6/6") {
			t.Errorf("no progress bar on the terminal: %q", got)
		}
		if colour := strings.Contains(got, "\x1b["); colour == noColor {
			t.Errorf("NO_COLOR=%v, colour codes present: %v: %q", noColor, colour, got)
		}
		if strings.Contains(out.String(), "checking [") || !strings.Contains(out.String(), "6 checked, 6 ok") {
			t.Errorf("stdout: %q", out.String())
		}
	}
}

// check is 429-aware as get --request is: throttled token requests wait Retry-After,
// are asked once more each, and every row ends ok.
func TestCheckThrottled(t *testing.T) {
	const n, throttled = 20, 4
	e := newEnv(t)
	for i := range n {
		e.Sim.AddCustomers(entrasim.Customer{TenantID: customerID(i), Name: "T"})
	}
	args := []string{"check", "-o", "json", "--scope", "graph", "--parallel", "4"}
	for i := range n {
		args = append(args, "--tenant", customerID(i))
	}
	e.Sim.ResetStats()
	e.Sim.ThrottleNext(throttled, time.Second)
	start := time.Now()
	r := run(t, e, "", args...).mustCode(t, 0)
	if el := time.Since(start); el < time.Second {
		t.Errorf("done in %s: Retry-After was not waited for", el)
	}
	if rep := decodeCheck(t, r.stdout); rep.OK != n {
		t.Errorf("%d ok of %d: %s", rep.OK, n, r.stdout)
	}
	if got := e.Sim.Stats().Requests["token"]; got != n+throttled {
		t.Errorf("%d token requests, want %d (one more per 429)", got, n+throttled)
	}
}
