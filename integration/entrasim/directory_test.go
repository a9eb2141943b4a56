package entrasim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func apiGet(t *testing.T, s *Sim, target, token string, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func dirCustomers(n int) []Customer {
	var cs []Customer
	for i := range n {
		cs = append(cs, Customer{
			TenantID: fmt.Sprintf("d1400000-0000-4000-8000-%012d", i), Name: fmt.Sprintf("Dir %d", i), Domain: fmt.Sprintf("dir%d.onmicrosoft.com", i),
			Relationships: []Relationship{{Status: "active", EndDateTime: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), RoleIDs: []string{"f2ef992c-3afb-46b9-b7cf-a126ee74c451"}}},
		})
	}
	return cs
}

func TestDirectoryGraphPagingAndTokens(t *testing.T) {
	s := newSim(t, Options{})
	s.AddCustomers(dirCustomers(7)...)
	s.SetAPIPageSize(3)
	graph := signIn(t, s, PublicClientID, HomeTenantID, GraphScope).AccessToken
	pc := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope).AccessToken
	customerTok := signIn(t, s, PublicClientID, CustomerTenantID, GraphScope).AccessToken

	base := s.URL() + "/v1.0/tenantRelationships/delegatedAdminRelationships"
	for name, tok := range map[string]string{"none": "", "partner center audience": pc, "customer tenant": customerTok, "garbage": "x.y.z"} {
		if status, _, body := apiGet(t, s, base, tok, nil); status != 401 || !strings.Contains(string(body), "InvalidAuthenticationToken") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	var ids []string
	next, pages := base, 0
	for next != "" {
		status, _, body := apiGet(t, s, next, graph, nil)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		var p struct {
			Value []struct {
				Customer struct{ TenantID string } `json:"customer"`
				Status   string                    `json:"status"`
				End      string                    `json:"endDateTime"`
				Extend   string                    `json:"autoExtendDuration"`
			} `json:"value"`
			Next string `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Value {
			ids = append(ids, v.Customer.TenantID)
			if v.Status != "active" || v.End != "2027-01-01T00:00:00Z" || v.Extend != "PT0S" {
				t.Errorf("relationship %+v", v)
			}
		}
		next = p.Next
		pages++
	}
	if len(ids) != 7 || pages != 3 {
		t.Errorf("%d relationships in %d pages, want 7 in 3", len(ids), pages)
	}

	s.DenyAPI(APIGraph, true)
	if status, _, body := apiGet(t, s, base, graph, nil); status != 403 || !strings.Contains(string(body), "Authorization_RequestDenied") {
		t.Errorf("denied: %d %s", status, body)
	}
	s.DenyAPI(APIGraph, false)
	s.FailAPINext(APIGraph, 1, 429, 1500*time.Millisecond)
	if status, h, _ := apiGet(t, s, base, graph, nil); status != 429 || h.Get("Retry-After") != "2" {
		t.Errorf("throttled: %d Retry-After %q", status, h.Get("Retry-After"))
	}
	s.SetGraphNextLink("foreign")
	_, _, body := apiGet(t, s, base, graph, nil)
	if !strings.Contains(string(body), `"@odata.nextLink":"https://localhost:`) {
		t.Errorf("foreign link: %s", body)
	}
	if st := s.APIStats(); st.Requests[APIGraph] != 3+4+1+1+1 || st.ForeignHost != 0 || st.Refused != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestDirectoryPartnerCenter(t *testing.T) {
	s := newSim(t, Options{})
	cs := dirCustomers(5)
	cs[4].NotInPartnerCenter = true
	s.AddCustomers(cs...)
	s.SetAPIPageSize(2)
	pc := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope).AccessToken
	graph := signIn(t, s, PublicClientID, HomeTenantID, GraphScope).AccessToken

	if status, _, body := apiGet(t, s, s.URL()+"/v1/customers", graph, nil); status != 401 {
		t.Errorf("graph token: %d %s", status, body)
	}
	target, header, n := s.URL()+"/v1/customers", http.Header{}, 0
	for target != "" {
		status, _, body := apiGet(t, s, target, pc, header)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		var p struct {
			Items []struct {
				CompanyProfile struct{ TenantID, Domain, CompanyName string } `json:"companyProfile"`
			} `json:"items"`
			Links struct {
				Next *struct {
					URI     string `json:"uri"`
					Headers []struct{ Key, Value string }
				} `json:"next"`
			} `json:"links"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		n += len(p.Items)
		target = ""
		if nx := p.Links.Next; nx != nil {
			target = s.URL() + "/v1" + nx.URI
			header = http.Header{"Ms-Continuationtoken": {nx.Headers[0].Value}}
		}
	}
	if n != 4 {
		t.Errorf("%d customers, want 4", n)
	}
	// The continuation token is required on a Next page.
	if status, _, _ := apiGet(t, s, s.URL()+"/v1/customers?seekOperation=Next", pc, nil); status != 400 {
		t.Errorf("no continuation token: %d", status)
	}

	// Without MFA in the token, Partner Center refuses with 900421.
	s.SetAMR([]string{"pwd"})
	noMFA := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope).AccessToken
	if status, _, body := apiGet(t, s, s.URL()+"/v1/customers", noMFA, nil); status != 401 || !strings.Contains(string(body), "900421") {
		t.Errorf("no MFA: %d %s", status, body)
	}
}

// A customer's FailCode is what a refresh-token redemption there answers.
func TestDirectoryTenantFailures(t *testing.T) {
	s := newSim(t, Options{})
	rt := signIn(t, s, PublicClientID, HomeTenantID, GraphScope).RefreshToken
	for _, c := range []struct {
		code   int
		status int
		oauth  string
	}{
		{65001, 400, "invalid_grant"}, {50020, 400, "invalid_grant"}, {50076, 400, "invalid_grant"},
		{50078, 400, "invalid_grant"}, {50079, 400, "invalid_grant"}, {70043, 400, "invalid_grant"},
		{53003, 400, "invalid_grant"}, {700016, 400, "unauthorized_client"}, {7000112, 400, "unauthorized_client"},
		{90099, 400, "invalid_grant"}, {90033, 503, "temporarily_unavailable"}, {12345, 400, "invalid_grant"},
	} {
		id := fmt.Sprintf("fa110000-0000-4000-8000-%012d", c.code)
		s.AddCustomers(Customer{TenantID: id, Name: "Failing", FailCode: c.code})
		resp, body := postToken(t, s, id, refreshForm(PublicClientID, rt, GraphScope))
		wantError(t, resp, body, c.status, c.oauth, c.code)
	}
	id := "fa110000-0000-4000-8000-000000000000"
	s.AddCustomers(Customer{TenantID: id, Name: "Fine"})
	resp, body := postToken(t, s, id, refreshForm(PublicClientID, rt, GraphScope))
	wantToken(t, resp, body)
	s.SetTenantFailure(id, 53003)
	resp, body = postToken(t, s, id, refreshForm(PublicClientID, rt, GraphScope))
	wantError(t, resp, body, 400, "invalid_grant", 53003)
}

func FuzzDecodeOffset(f *testing.F) {
	f.Add(encodeOffset("gdap", 3), "gdap")
	f.Add("", "pc")
	f.Add("!!", "pc")
	f.Fuzz(func(t *testing.T, tok, kind string) {
		off, ok := decodeOffset(tok, kind)
		if ok && off < 0 {
			t.Fatalf("negative offset %d", off)
		}
		if ok && tok != "" {
			if back, ok2 := decodeOffset(encodeOffset(kind, off), kind); !ok2 || back != off {
				t.Fatalf("round trip of %d", off)
			}
		}
	})
}
