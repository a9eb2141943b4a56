package customers

import (
	"strings"
	"testing"
	"unicode"

	"github.com/pctoken/pctoken-helper/settings"
)

// clean reports whether s holds no control or formatting character.
func clean(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

func FuzzDecodeGraphPage(f *testing.F) {
	f.Add([]byte(`{"value":[{"id":"1","customer":{"tenantId":"` + tidA + `","displayName":"A\u001b"},"status":"active","endDateTime":"2027-01-01T00:00:00Z","autoExtendDuration":"P180D","accessDetails":{"unifiedRoles":[{"roleDefinitionId":"f2ef992c-3afb-46b9-b7cf-a126ee74c451"}]}}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/x?$skiptoken=a"}`))
	f.Add([]byte(`{"value":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"value":[{"customer":{"tenantId":"x"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rels, _, _, err := DecodeGraphPage(b)
		if err != nil {
			return
		}
		for _, r := range rels {
			if !settings.IsGUID(r.TenantID) || r.TenantID != strings.ToLower(r.TenantID) {
				t.Fatalf("tenant id %q", r.TenantID)
			}
			for _, s := range append([]string{r.ID, r.Name, r.Status, r.AutoExtendDuration}, r.Roles...) {
				if !clean(s) || len([]rune(s)) > maxNameRunes+3 {
					t.Fatalf("unclean or unbounded text %q", s)
				}
			}
		}
		Merge(rels)
	})
}

func FuzzDecodePartnerCenterPage(f *testing.F) {
	f.Add([]byte(`{"totalCount":1,"items":[{"id":"` + tidA + `","companyProfile":{"tenantId":"` + tidA + `","domain":"a.onmicrosoft.com","companyName":"A"}}],"links":{"next":{"uri":"/customers?size=1&seekOperation=Next","method":"GET","headers":[{"key":"MS-ContinuationToken","value":"abc"}]}}}`))
	f.Add([]byte(`{"items":[],"links":{"next":{"uri":"/x","method":"POST"}}}`))
	f.Add([]byte(`{"links":{"next":{"uri":"/x","headers":[{"key":"MS-ContinuationToken","value":"a\r\nb"}]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, next, _, err := DecodePartnerCenterPage(b)
		if err != nil {
			return
		}
		for _, tn := range ts {
			if !settings.IsGUID(tn.ID) || !clean(tn.Name) || !clean(tn.Domain) {
				t.Fatalf("tenant %+v", tn)
			}
		}
		if next != nil && strings.ContainsAny(next.Continuation, "\r\n\x00") {
			t.Fatalf("continuation %q", next.Continuation)
		}
		Dedupe(ts)
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"profile":"p","relationships":[{"id":"1","tenant_id":"` + tidA + `","status":"active\u0007","end_date_time":"2027-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		for _, rel := range r.Relationships {
			if !clean(rel.Status) || !clean(rel.Name) {
				t.Fatalf("unclean %+v", rel)
			}
		}
	})
}

func FuzzSameHost(f *testing.F) {
	for _, s := range []string{"/v1.0/x", "https://graph.example/x", "//evil/x", "https://graph.example@evil/x", "https://evil/x?https://graph.example/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, link string) {
		u, err := sameHost(API{URL: "https://graph.example"}, link)
		if err == nil && (u.Scheme != "https" || !strings.EqualFold(u.Host, "graph.example") || u.User != nil) {
			t.Fatalf("%q accepted as %s", link, u)
		}
	})
}
