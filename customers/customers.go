// Package customers holds what a partner needs to work across its customers: the
// customer tenants its user can reach, listed from Microsoft Graph's GDAP relationships
// or Partner Center's customer list (tenants), the record of the relationships seen
// (for status --warn-days), and the classification of a token request in each tenant
// (check).
//
// Everything that comes from those APIs is outside input: response bodies and pages are
// bounded, links must stay on the API's own https host (a token never follows a link
// elsewhere), and text is cleaned of control characters before anyone sees it.
package customers

import (
	"context"
	"sort"
	"strings"
	"time"
	"unicode"
)

// TokenSource hands out access tokens for a scope, from the same chain as get (cache,
// then silent exchange of the stored refresh token). cli passes its own.
type TokenSource interface {
	AccessToken(ctx context.Context, scope string) (string, error)
}

// TokenFunc makes a function a TokenSource.
type TokenFunc func(ctx context.Context, scope string) (string, error)

// AccessToken calls f.
func (f TokenFunc) AccessToken(ctx context.Context, scope string) (string, error) {
	return f(ctx, scope)
}

// Sources a tenant list comes from.
const (
	SourceGraph         = "graph"
	SourcePartnerCenter = "partner-center"
)

// Relationship is one GDAP relationship as Graph lists it.
type Relationship struct {
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name,omitempty"`
	Status   string `json:"status"`
	// EndDateTime is when the relationship ends; zero when Graph gave none.
	EndDateTime time.Time `json:"end_date_time,omitzero"`
	// AutoExtendDuration is Graph's ISO 8601 duration ("P180D"); "PT0S" or "" means
	// the relationship does not extend itself.
	AutoExtendDuration string   `json:"auto_extend_duration,omitempty"`
	Roles              []string `json:"roles,omitempty"`
}

// AutoExtends reports whether the relationship extends itself when it ends.
func (r Relationship) AutoExtends() bool { return autoExtends(r.AutoExtendDuration) }

func autoExtends(d string) bool {
	d = strings.ToUpper(strings.TrimSpace(d))
	if d == "" {
		return false
	}
	// A duration is zero when every number in it is zero: PT0S, P0D, P0DT0H0M0S.
	for _, c := range d {
		if c >= '1' && c <= '9' {
			return true
		}
	}
	return false
}

// Tenant is one customer tenant the partner can reach, as tenants prints it.
type Tenant struct {
	ID     string `json:"tenant_id"`
	Name   string `json:"name,omitempty"`
	Domain string `json:"domain,omitempty"`
	// Status, EndsAt, AutoExtend and Roles come from the GDAP relationship that
	// represents the tenant (see Merge); Partner Center's list has none of them.
	Status        string    `json:"status,omitempty"`
	EndsAt        time.Time `json:"end_date_time,omitzero"`
	AutoExtend    *bool     `json:"auto_extend,omitempty"` // nil: unknown (Partner Center)
	Roles         []string  `json:"roles,omitempty"`
	Relationships int       `json:"relationships,omitempty"`
	Source        string    `json:"source"`
}

// statusRank orders GDAP statuses from the most to the least useful: a relationship
// that grants access now, then one about to, then one that used to.
var statusRank = map[string]int{
	"active":               0,
	"expiring":             1,
	"activating":           2,
	"approved":             3,
	"approvalpending":      4,
	"created":              5,
	"terminationrequested": 6,
	"terminating":          7,
	"expired":              8,
	"terminated":           9,
}

func rank(status string) int {
	if r, ok := statusRank[strings.ToLower(status)]; ok {
		return r
	}
	return len(statusRank)
}

// grantsAccess reports whether a relationship in this status lets the partner's users in.
func grantsAccess(status string) bool { return rank(status) <= 1 }

// Merge makes one Tenant per customer out of the relationships: a partner often has
// several with one customer (a new one requested before the old one expired, one per
// set of roles). The tenant takes the status of its most useful relationship (active
// before expiring before pending before terminated, see statusRank), and among those
// the latest end date and its auto-extension. Its roles are those of every
// relationship that grants access now (the user gets their union), else those of the
// chosen one. Tenants are sorted by name, then id, so that outputs diff day to day.
func Merge(rels []Relationship) []Tenant {
	byID := map[string]*Tenant{}
	roles := map[string]map[string]bool{}
	var order []string
	for _, r := range rels {
		id := strings.ToLower(r.TenantID)
		t, seen := byID[id]
		if !seen {
			t = &Tenant{ID: id, Source: SourceGraph}
			byID[id] = t
			roles[id] = map[string]bool{}
			order = append(order, id)
		}
		t.Relationships++
		if !seen || better(r, t) {
			ext := r.AutoExtends()
			t.Status, t.EndsAt, t.AutoExtend = r.Status, r.EndDateTime, &ext
			if r.Name != "" {
				t.Name = r.Name
			}
		}
		if t.Name == "" {
			t.Name = r.Name
		}
		if grantsAccess(r.Status) {
			for _, role := range r.Roles {
				roles[id][role] = true
			}
		}
	}
	out := make([]Tenant, 0, len(order))
	for _, id := range order {
		t := byID[id]
		set := roles[id]
		if len(set) == 0 {
			// No relationship grants access: show what the chosen one held.
			for _, r := range rels {
				if strings.EqualFold(r.TenantID, id) && r.Status == t.Status && r.EndDateTime.Equal(t.EndsAt) {
					for _, role := range r.Roles {
						set[role] = true
					}
				}
			}
		}
		for role := range set {
			t.Roles = append(t.Roles, role)
		}
		sort.Strings(t.Roles)
		out = append(out, *t)
	}
	SortTenants(out)
	return out
}

// better reports whether r represents its tenant better than what t holds now.
func better(r Relationship, t *Tenant) bool {
	if a, b := rank(r.Status), rank(t.Status); a != b {
		return a < b
	}
	return r.EndDateTime.After(t.EndsAt)
}

// SortTenants sorts by name (case-insensitive), then id.
func SortTenants(ts []Tenant) {
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := strings.ToLower(ts[i].Name), strings.ToLower(ts[j].Name)
		if a != b {
			return a < b
		}
		return ts[i].ID < ts[j].ID
	})
}

// Dedupe keeps the first tenant of each id, in order (Partner Center may list a
// customer twice across pages when its list changes while being read).
func Dedupe(ts []Tenant) []Tenant {
	seen := map[string]bool{}
	out := ts[:0]
	for _, t := range ts {
		id := strings.ToLower(t.ID)
		if seen[id] {
			continue
		}
		seen[id] = true
		t.ID = id
		out = append(out, t)
	}
	return out
}

// Clean makes outside text safe to show: control and formatting characters (escape
// sequences, carriage returns, bidirectional overrides) become spaces, runs of spaces
// one, and the result is at most max runes.
func Clean(s string, max int) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			space = true
			continue
		}
		if n >= max {
			b.WriteString("...")
			break
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	return b.String()
}
