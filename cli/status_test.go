package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
)

func TestRelativeTimes(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{now.Add(42*time.Minute + 30*time.Second), "in 42m"},
		{now.Add(59 * time.Second), "in 59s"},
		{now.Add(time.Hour), "in 1h"},
		{now.Add(3*time.Hour + 5*time.Minute), "in 3h 5m"},
		{now.Add(50 * time.Hour), "in 2 days"},
		{now, "expired just now"},
		{now.Add(-3 * time.Hour), "expired 3h ago"},
		{now.Add(-25 * time.Hour), "expired 1 day ago"},
	} {
		if got := expiresText(now, c.t); got != c.want {
			t.Errorf("expiresText(%v) = %q, want %q", c.t.Sub(now), got, c.want)
		}
	}
	days := 88
	info := profileInfo{Name: "p", RotatedAt: ptr(now.Add(-49 * time.Hour)), DaysLeft: &days}
	if got := refreshTokenText(info, now); got != "rotated 2 days ago, 88 days left before the 90-day inactivity limit" {
		t.Errorf("refresh token: %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

// One token cached under a tenant's name and its id is one row naming both, valid as
// long as the later entry; an expired entry stays, marked expired.
func TestStatusTokensMergeNameAndID(t *testing.T) {
	const tid = "0f1e2d3c-0000-4000-8000-00000000fab1"
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	key := func(tenant, scope string) cache.Key {
		return cache.Key{Profile: "p", ClientID: "c", Authority: "https://login.example", Tenant: tenant, Scopes: []string{scope}}
	}
	graph := "https://graph.microsoft.com/.default"
	entries := []cache.Entry{
		{Key: key(tid, graph), TenantID: tid, ExpiresOn: now.Add(time.Hour)},
		{Key: key("fabrikam.onmicrosoft.com", graph), TenantID: tid, ExpiresOn: now.Add(30 * time.Minute)},
		{Key: key("contoso.onmicrosoft.com", "https://management.azure.com/user_impersonation"), TenantID: "0f1e2d3c-0000-4000-8000-00000000c0de", ExpiresOn: now.Add(-time.Hour)},
	}
	rows := statusTokens(entries, "public", now)
	if len(rows) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	arm, fab := rows[0], rows[1]
	if fab.Tenant != "fabrikam.onmicrosoft.com" || fab.TenantID != tid || !fab.ExpiresOn.Equal(now.Add(time.Hour)) || fab.Alias != "graph" || fab.Expired {
		t.Errorf("merged row %+v", fab)
	}
	if arm.Alias != "arm" || !arm.Expired {
		t.Errorf("expired row %+v", arm)
	}
	var b strings.Builder
	rep := statusReport{Profiles: []statusProfile{{profileInfo: profileInfo{Name: "p", Cloud: "public", Store: "file"}, Tokens: rows}}, Now: now, All: 2}
	if err := writeStatusText(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fabrikam.onmicrosoft.com (" + tid + ")", "graph", "in 1h", "expired 1h ago", "2 cached tokens, 1 expired"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}

	f := statusFilter{Tenant: strings.ToUpper(tid)}
	if got := f.keep(rows, "public"); len(got) != 1 || got[0].TenantID != tid {
		t.Errorf("--tenant by id: %+v", got)
	}
	f = statusFilter{Tenant: "FABRIKAM.onmicrosoft.com", Scopes: []string{"arm"}}
	if got := f.keep(rows, "public"); len(got) != 0 {
		t.Errorf("--tenant fabrikam --scope arm: %+v", got)
	}
	f = statusFilter{Scopes: []string{"https://graph.microsoft.com/User.Read"}}
	if got := f.keep(rows, "public"); len(got) != 1 || got[0].Alias != "graph" {
		t.Errorf("--scope of the same resource: %+v", got)
	}
}

// What a cache file names is shown cleaned of control characters.
func TestStatusTextIsCleaned(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	e := cache.Entry{Key: cache.Key{Profile: "p", Tenant: "evil\x1b]0;pwned\a.example", Scopes: []string{"x\x1b[2J/.default"}}, ExpiresOn: now.Add(time.Hour)}
	rep := statusReport{Profiles: []statusProfile{{profileInfo: profileInfo{Name: "p", Cloud: "public"}, Tokens: statusTokens([]cache.Entry{e}, "public", now)}}, Now: now, All: 1}
	var b strings.Builder
	if err := writeStatusText(&b, rep); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\x1b\a") {
		t.Fatalf("control characters reach the terminal: %q", b.String())
	}
}
