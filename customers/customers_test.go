package customers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
)

const (
	tidA = "11111111-1111-4111-8111-111111111111"
	tidB = "22222222-2222-4222-8222-222222222222"
)

func TestMergePicksTheMostUsefulRelationship(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	rels := []Relationship{
		{ID: "1", TenantID: tidA, Name: "Alpha", Status: "expired", EndDateTime: now.Add(-time.Hour), Roles: []string{"Old"}},
		{ID: "2", TenantID: strings.ToUpper(tidA), Name: "Alpha", Status: "active", EndDateTime: now.Add(24 * time.Hour), AutoExtendDuration: "PT0S", Roles: []string{"Global Reader"}},
		{ID: "3", TenantID: tidA, Name: "Alpha", Status: "active", EndDateTime: now.Add(48 * time.Hour), AutoExtendDuration: "P180D", Roles: []string{"Exchange Administrator"}},
		{ID: "4", TenantID: tidB, Name: "beta", Status: "terminated", Roles: []string{"Directory Readers"}},
		{ID: "5", TenantID: tidB, Name: "beta", Status: "expired", EndDateTime: now, Roles: []string{"Global Reader"}},
	}
	ts := Merge(rels)
	if len(ts) != 2 {
		t.Fatalf("%d tenants, want 2: %+v", len(ts), ts)
	}
	a, b := ts[0], ts[1]
	if a.ID != tidA || a.Status != "active" || !a.EndsAt.Equal(now.Add(48*time.Hour)) || a.AutoExtend == nil || !*a.AutoExtend || a.Relationships != 3 {
		t.Errorf("alpha: %+v, want the active relationship ending last, with its auto-extension", a)
	}
	if got := strings.Join(a.Roles, ","); got != "Exchange Administrator,Global Reader" {
		t.Errorf("alpha roles %q: want the union of the active relationships'", got)
	}
	if b.Status != "expired" || strings.Join(b.Roles, ",") != "Global Reader" {
		t.Errorf("beta: %+v, want expired (before terminated) with that relationship's roles", b)
	}
}

func TestAutoExtends(t *testing.T) {
	for d, want := range map[string]bool{"": false, "PT0S": false, "P0D": false, "P0DT0H0M0S": false, "P180D": true, "p180d": true, "PT1S": true} {
		if got := autoExtends(d); got != want {
			t.Errorf("autoExtends(%q) = %v, want %v", d, got, want)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"Contoso\x1b[31m Ltd":    "Contoso [31m Ltd",
		"a\r\nb\tc":              "a b c",
		"evil\u202egnp.exe":      "evil gnp.exe",
		"  spaced  ":             "spaced",
		strings.Repeat("x", 300): strings.Repeat("x", 256) + "...",
	} {
		if got := Clean(in, 256); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSameHost(t *testing.T) {
	api := API{URL: "https://graph.example:8443"}
	for link, ok := range map[string]bool{
		"/v1.0/x?$skiptoken=1":                     true,
		"https://graph.example:8443/v1.0/x":        true,
		"https://GRAPH.example:8443/v1.0/x":        true,
		"https://graph.example/v1.0/x":             false, // another port
		"http://graph.example:8443/v1.0/x":         false,
		"https://evil.example/v1.0/x":              false,
		"//evil.example/v1.0/x":                    false,
		"https://user@graph.example:8443/v1.0/x":   false,
		"https://graph.example:8443.evil.example/": false,
	} {
		_, err := sameHost(api, link)
		if (err == nil) != ok {
			t.Errorf("sameHost(%q): err %v, want ok=%v", link, err, ok)
		}
	}
}

// Behind an override (a gateway), links naming the cloud's own host are followed on
// the override's host; any other host is still refused.
func TestSameHostCanonical(t *testing.T) {
	api := API{URL: "https://gateway.example", Canonical: "https://graph.microsoft.com"}
	u, err := sameHost(api, "https://graph.microsoft.com/v1.0/x?$skiptoken=2")
	if err != nil || u.String() != "https://gateway.example/v1.0/x?$skiptoken=2" {
		t.Errorf("canonical link: %v %v", u, err)
	}
	for _, link := range []string{"http://graph.microsoft.com/v1.0/x", "https://evil.example/v1.0/x", "https://u@graph.microsoft.com/x"} {
		if _, err := sameHost(api, link); err == nil {
			t.Errorf("%s accepted", link)
		}
	}
}

func TestAPIRooted(t *testing.T) {
	for in, want := range map[string]string{
		"/customers?size=4&seekOperation=Next": "/v1/customers?size=4&seekOperation=Next",
		"customers?size=4":                     "/v1/customers?size=4",
		"/v1/customers?seekOperation=Next":     "/v1/customers?seekOperation=Next",
		"https://api.example/v1/customers?x=1": "https://api.example/v1/customers?x=1",
		"//evil.example/customers":             "//evil.example/customers",
	} {
		if got := apiRooted(in); got != want {
			t.Errorf("apiRooted(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err    error
		status string
		kind   failure.Kind
	}{
		{nil, OK, failure.Unexpected},
		{&failure.Error{Kind: failure.ConsentNeeded, AADSTS: "65001"}, ConsentMissing, failure.ConsentNeeded},
		{&failure.Error{Kind: failure.ConsentNeeded, AADSTS: "50020"}, NoDelegatedAccess, failure.Configuration},
		{&failure.Error{Kind: failure.ConsentNeeded, AADSTS: "70043"}, MFARequired, failure.ConsentNeeded},
		{&failure.Error{Kind: failure.ConsentNeeded, AADSTS: "53003"}, BlockedByPolicy, failure.Configuration},
		{&failure.Error{Kind: failure.Configuration, AADSTS: "700016"}, AppUnknown, failure.Configuration},
		{&failure.Error{Kind: failure.Transient, AADSTS: "90055"}, Transient, failure.Transient},
		{&failure.Error{Kind: failure.ConsentNeeded, AADSTS: "700082"}, Failed, failure.ConsentNeeded},
		{errors.New("boom"), Failed, failure.Unexpected},
	} {
		o := Classify(c.err)
		if o.Status != c.status || (c.err != nil && o.Kind != c.kind) {
			t.Errorf("Classify(%v) = %+v, want %s kind %v", c.err, o, c.status, c.kind)
		}
	}
}

// Check answers in the probes' order whatever the order of completion, streams rows
// as soon as every earlier one is in, and never runs more than parallel at once.
func TestCheckOrderAndBound(t *testing.T) {
	var probes []Probe
	for i := range 40 {
		probes = append(probes, Probe{Tenant: string(rune('a' + i%26)), Scope: string(rune('0' + i/26))})
	}
	var mu = make(chan struct{}, 1)
	running, peak := 0, 0
	get := func(ctx context.Context, p Probe) error {
		mu <- struct{}{}
		running++
		peak = max(peak, running)
		<-mu
		time.Sleep(time.Millisecond * time.Duration(len(p.Tenant)%3))
		mu <- struct{}{}
		running--
		<-mu
		if p.Tenant == "c" {
			return &failure.Error{Kind: failure.ConsentNeeded, AADSTS: "65001"}
		}
		return nil
	}
	var streamed []Result
	progressCalls := 0
	res := Check(context.Background(), probes, 4, get, RemedyContext{AuthorityHost: "https://login.example", ClientID: "app"}.Remedy,
		func(r Result) { streamed = append(streamed, r) }, func(done, total int) { progressCalls++ })
	if peak > 4 {
		t.Errorf("%d ran at once, want at most 4", peak)
	}
	if len(res) != 40 || len(streamed) != 40 || progressCalls != 40 {
		t.Fatalf("%d results, %d streamed, %d progress calls", len(res), len(streamed), progressCalls)
	}
	for i := range res {
		if res[i].Tenant != probes[i].Tenant || res[i].Scope != probes[i].Scope || streamed[i] != res[i] {
			t.Fatalf("row %d out of order", i)
		}
		if res[i].Tenant == "c" && (res[i].Status != ConsentMissing || res[i].Remedy != "an administrator of the customer grants consent: https://login.example/c/adminconsent?client_id=app") {
			t.Errorf("row %d: %+v", i, res[i])
		}
	}
}

func TestRecordRoundTripAndWarning(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	rec := Record{Profile: "p", Source: SourceGraph, SeenAt: now, Relationships: []Relationship{
		{ID: "soon", TenantID: tidA, Status: "active", EndDateTime: now.Add(5 * 24 * time.Hour), AutoExtendDuration: "PT0S"},
		{ID: "extends", TenantID: tidA, Status: "active", EndDateTime: now.Add(5 * 24 * time.Hour), AutoExtendDuration: "P180D"},
		{ID: "later", TenantID: tidB, Status: "active", EndDateTime: now.Add(50 * 24 * time.Hour)},
		{ID: "gone", TenantID: tidB, Status: "expired", EndDateTime: now.Add(-24 * time.Hour)},
	}}
	if err := SaveRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRecord(dir, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Relationships) != 4 || got.Version != RecordVersion || !got.SeenAt.Equal(now) {
		t.Fatalf("round trip: %+v", got)
	}
	ending := got.EndingWithin(now, 7*24*time.Hour)
	if len(ending) != 1 || ending[0].ID != "soon" {
		t.Errorf("ending within 7 days: %+v, want only the one without auto-extend", ending)
	}
	if _, err := LoadRecord(dir, "other"); !errors.Is(err, ErrNoRecord) {
		t.Errorf("missing record: %v", err)
	}
	if filepath.Base(RecordPath(dir, "p")) != "p.json" {
		t.Error(RecordPath(dir, "p"))
	}
}

// The client against a local https server: the token goes with each page, a Graph
// error is read, and a link to another host is refused before any request.
func TestClientAgainstServer(t *testing.T) {
	var hits int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		switch r.URL.Query().Get("$skiptoken") {
		case "":
			json.NewEncoder(w).Encode(map[string]any{
				"value":           []any{map[string]any{"id": "r1", "customer": map[string]string{"tenantId": tidA, "displayName": "A"}, "status": "active"}},
				"@odata.nextLink": "https://" + r.Host + r.URL.Path + "?$skiptoken=2",
			})
		case "2":
			json.NewEncoder(w).Encode(map[string]any{
				"value":           []any{map[string]any{"id": "r2", "customer": map[string]string{"tenantId": "not-a-guid"}}},
				"@odata.nextLink": "https://elsewhere.example" + r.URL.Path + "?$skiptoken=3",
			})
		}
	}))
	defer srv.Close()
	c := &Client{
		Tokens: TokenFunc(func(ctx context.Context, scope string) (string, error) { return "tok", nil }),
		Graph:  API{URL: srv.URL, Scope: "https://graph.microsoft.com/.default"},
		HTTP:   srv.Client(),
	}
	_, err := c.Relationships(context.Background())
	if err == nil || !strings.Contains(err.Error(), "elsewhere.example") || hits != 2 {
		t.Fatalf("err %v after %d requests: want a refusal of the other host after 2", err, hits)
	}

	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(403)
		w.Write([]byte(`{"error":{"code":"Authorization_RequestDenied","message":"Insufficient\u001b[2J privileges"}}`))
	})
	_, err = c.Relationships(context.Background())
	if failure.KindOf(err) != failure.Configuration || !strings.Contains(err.Error(), "(Authorization_RequestDenied): Insufficient [2J privileges") {
		t.Errorf("403: %v (kind %v)", err, failure.KindOf(err))
	}
}
