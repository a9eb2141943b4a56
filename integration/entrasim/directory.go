package entrasim

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The partner's customers, as Microsoft Graph and Partner Center list them, and how a
// refresh-token redemption ends in each customer tenant.
//
// The simulator serves, on its own host:
//
//	GET /v1.0/tenantRelationships/delegatedAdminRelationships   Graph, paged by @odata.nextLink ($skiptoken)
//	GET /v1/customers                                           Partner Center, paged by links.next + MS-ContinuationToken
//
// Graph takes a delegated user token of the home tenant whose audience is Graph;
// Partner Center one whose audience is Partner Center, with user_impersonation in scp
// and mfa in amr (401 with code 900421 otherwise, as the real API answers). The
// simulator's .default consent for Graph is User.Read (see token.go), so Graph does
// not ask for DelegatedAdminRelationship.Read.All; DenyAPI makes it answer 403 as it
// does when that permission or the user's role is missing.

// APIGraph and APIPartnerCenter name the two APIs in the directory controls.
const (
	APIGraph         = "graph"
	APIPartnerCenter = "partner-center"
)

// PartnerCenterResource is the audience Partner Center accepts.
const PartnerCenterResource = "https://api.partnercenter.microsoft.com"

// Customer is a customer tenant of the partner.
type Customer struct {
	TenantID string
	Name     string
	Domain   string
	// Relationships are its GDAP relationships, as Graph lists them; none leaves the
	// customer out of Graph's list.
	Relationships []Relationship
	// NotInPartnerCenter leaves the customer out of Partner Center's list.
	NotInPartnerCenter bool
	// FailCode is the AADSTS code a refresh-token redemption in this tenant fails
	// with; 0 lets the user in (delegated access). 50020 makes the tenant one without
	// access at all; the other codes are answered as Entra words them where known:
	// 65001, 90099 (consent), 50076, 50078, 50079, 70043 (MFA, sign-in frequency),
	// 53003 (Conditional Access), 700016, 7000112 (app unknown or disabled), and 90033
	// (503 temporarily_unavailable on every try: transient).
	FailCode int
}

// Relationship is one GDAP relationship.
type Relationship struct {
	ID                 string // a GUID-like id; generated when empty
	Status             string // active, expired, terminated, approvalPending, ...
	EndDateTime        time.Time
	AutoExtendDuration string   // "P180D", or "PT0S" for none; "PT0S" when empty
	RoleIDs            []string // Entra role template ids
}

// APIStats counts the directory API requests.
type APIStats struct {
	// Requests by API (APIGraph, APIPartnerCenter), faults and refusals included.
	Requests map[string]int
	// ForeignHost counts requests that arrived for another host name than the one
	// the simulator's URL names (a client that followed a link to another host).
	ForeignHost int
	// Refused counts 401 and 403 answers.
	Refused int
}

// directory is the state behind the directory APIs. Guarded by Sim.mu; the zero value
// is ready.
type directory struct {
	customers []Customer
	pageSize  int
	denied    map[string]bool
	faults    map[string]*apiFault
	linkMode  string // "", "loop" or "foreign"
	stats     APIStats
}

type apiFault struct {
	n          int
	status     int
	retryAfter time.Duration
}

// AddCustomers adds customer tenants: each becomes a tenant of the world (with access
// unless FailCode is 50020) and an entry in the directory APIs' lists.
func (s *Sim) AddCustomers(cs ...Customer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		c.Relationships = slices.Clone(c.Relationships)
		name := c.Name
		if name == "" {
			name, _, _ = strings.Cut(c.Domain, ".")
		}
		s.addTenantLocked(c.TenantID, c.Domain, name, c.FailCode != 50020)
		if c.FailCode != 50020 {
			s.tenants[strings.ToLower(c.TenantID)].failCode = c.FailCode
		}
		for i := range c.Relationships {
			if c.Relationships[i].ID == "" {
				c.Relationships[i].ID = guidFrom(fmt.Sprintf("gdap/%s/%d", c.TenantID, i)) + "-" + guidFrom(c.TenantID)[:8]
			}
		}
		s.dir.customers = append(s.dir.customers, c)
	}
}

// SetTenantFailure makes refresh-token redemptions in tenant fail with code (0: succeed
// again). The tenant must exist.
func (s *Sim) SetTenantFailure(tenantID string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tenants[strings.ToLower(tenantID)]; ok {
		t.failCode = code
	}
}

// SetAPIPageSize sets how many items a page of either API holds (default 100).
func (s *Sim) SetAPIPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.pageSize = max(n, 0)
}

// DenyAPI makes an API answer 403 (Graph: Authorization_RequestDenied) while on.
func (s *Sim) DenyAPI(api string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir.denied == nil {
		s.dir.denied = map[string]bool{}
	}
	s.dir.denied[api] = on
}

// FailAPINext makes the next n requests to an API answer status: 429 with Retry-After
// (whole seconds, rounded up), or a 5xx.
func (s *Sim) FailAPINext(api string, n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir.faults == nil {
		s.dir.faults = map[string]*apiFault{}
	}
	s.dir.faults[api] = &apiFault{n: max(n, 0), status: status, retryAfter: retryAfter}
}

// SetGraphNextLink changes Graph's @odata.nextLink: "loop" makes every page after the
// first link to the second page again; "foreign" makes it name another host (localhost
// instead of 127.0.0.1, the same server); "" is normal paging.
func (s *Sim) SetGraphNextLink(mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.linkMode = mode
}

// APIStats returns a copy of the directory API counters.
func (s *Sim) APIStats() APIStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dir.stats
	st.Requests = map[string]int{}
	for k, v := range s.dir.stats.Requests {
		st.Requests[k] = v
	}
	return st
}

// serveDirectory answers the directory APIs; false when the path is not one of them.
func (s *Sim) serveDirectory(w http.ResponseWriter, r *http.Request, rc *reqCtx) bool {
	var api string
	switch r.URL.Path {
	case "/v1.0/tenantRelationships/delegatedAdminRelationships":
		api = APIGraph
	case "/v1/customers":
		api = APIPartnerCenter
	default:
		return false
	}
	s.mu.Lock()
	if s.dir.stats.Requests == nil {
		s.dir.stats.Requests = map[string]int{}
	}
	s.dir.stats.Requests[api]++
	if !strings.EqualFold(r.Host, s.host) {
		s.dir.stats.ForeignHost++
	}
	var fault *apiFault
	if f := s.dir.faults[api]; f != nil && f.n > 0 {
		f.n--
		fault = &apiFault{status: f.status, retryAfter: f.retryAfter}
	}
	denied := s.dir.denied[api]
	s.mu.Unlock()
	rc.note("api=" + api)

	if r.Method != http.MethodGet {
		writeAPIError(w, api, http.StatusMethodNotAllowed, "Request_BadRequest", "Only GET is served here.")
		return true
	}
	if fault != nil {
		if fault.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(fault.retryAfter.Seconds())), 10))
			writeAPIError(w, api, fault.status, "TooManyRequests", "Too many requests.")
		} else {
			writeAPIError(w, api, fault.status, "ServiceUnavailable", "The service is temporarily unavailable.")
		}
		return true
	}
	if status, code, msg := s.checkAPIToken(api, r); status != 0 {
		s.refused()
		writeAPIError(w, api, status, code, msg)
		return true
	}
	if denied {
		s.refused()
		writeAPIError(w, api, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return true
	}
	if api == APIGraph {
		s.serveRelationships(w, r)
	} else {
		s.serveCustomers(w, r)
	}
	return true
}

func (s *Sim) refused() {
	s.mu.Lock()
	s.dir.stats.Refused++
	s.mu.Unlock()
}

// checkAPIToken checks the bearer token as the API would; status 0 accepts it.
func (s *Sim) checkAPIToken(api string, r *http.Request) (status int, code, msg string) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty."
	}
	c, err := s.ValidateAccessToken(tok)
	switch {
	case err != nil:
		return http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure."
	case c.AppOnly || c.UPN == "":
		return http.StatusUnauthorized, "InvalidAuthenticationToken", "A delegated (user) token is required."
	case !strings.EqualFold(c.TenantID, HomeTenantID):
		return http.StatusUnauthorized, "InvalidAuthenticationToken", "The token is not for the partner's tenant."
	}
	if api == APIGraph {
		if !sameResource(c.Audience, graphResource) {
			return http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
		}
		return 0, "", ""
	}
	switch {
	case !sameResource(c.Audience, PartnerCenterResource):
		return http.StatusUnauthorized, "401", "The audience of the token is not Partner Center."
	case !slices.Contains(c.Scopes, "user_impersonation"):
		return http.StatusUnauthorized, "401", "The token lacks the user_impersonation scope."
	case !slices.Contains(c.AMR, "mfa"):
		return http.StatusUnauthorized, "900421", "Multi-factor authentication is required for this operation."
	}
	return 0, "", ""
}

// writeAPIError answers in the API's own error shape.
func writeAPIError(w http.ResponseWriter, api string, status int, code, msg string) {
	if api == APIGraph {
		writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
		return
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		n = status
	}
	writeJSON(w, status, map[string]any{"code": n, "description": msg, "data": []any{}, "source": "PartnerFD"})
}

func (s *Sim) pageSizeLocked() int {
	if s.dir.pageSize > 0 {
		return s.dir.pageSize
	}
	return 100
}

// relationshipJSON is a delegatedAdminRelationship as Graph sends it.
type relationshipJSON struct {
	ODataType     string `json:"@odata.type"`
	ID            string `json:"id"`
	DisplayName   string `json:"displayName"`
	Duration      string `json:"duration"`
	Customer      any    `json:"customer"`
	AccessDetails any    `json:"accessDetails"`
	Status        string `json:"status"`
	AutoExtend    string `json:"autoExtendDuration"`
	Created       string `json:"createdDateTime"`
	Activated     string `json:"activatedDateTime,omitempty"`
	LastModified  string `json:"lastModifiedDateTime"`
	EndDateTime   string `json:"endDateTime,omitempty"`
}

func (s *Sim) serveRelationships(w http.ResponseWriter, r *http.Request) {
	off, ok := decodeOffset(r.URL.Query().Get("$skiptoken"), "gdap")
	if !ok {
		writeAPIError(w, APIGraph, http.StatusBadRequest, "Request_BadRequest", "Invalid $skiptoken.")
		return
	}
	s.mu.Lock()
	var all []relationshipJSON
	for _, c := range s.dir.customers {
		for _, rel := range c.Relationships {
			roles := []map[string]string{}
			for _, id := range rel.RoleIDs {
				roles = append(roles, map[string]string{"roleDefinitionId": id})
			}
			ext := rel.AutoExtendDuration
			if ext == "" {
				ext = "PT0S"
			}
			j := relationshipJSON{
				ODataType:     "#microsoft.graph.delegatedAdminRelationship",
				ID:            rel.ID,
				DisplayName:   "Contoso GDAP " + c.Name,
				Duration:      "P730D",
				Customer:      map[string]string{"tenantId": c.TenantID, "displayName": c.Name},
				AccessDetails: map[string]any{"unifiedRoles": roles},
				Status:        rel.Status,
				AutoExtend:    ext,
				Created:       "2024-01-01T00:00:00Z",
				LastModified:  "2024-01-02T00:00:00Z",
			}
			if !rel.EndDateTime.IsZero() {
				j.EndDateTime = rel.EndDateTime.UTC().Format(time.RFC3339)
			}
			all = append(all, j)
		}
	}
	size, mode := s.pageSizeLocked(), s.dir.linkMode
	s.mu.Unlock()

	end := min(off+size, len(all))
	page := all[min(off, len(all)):end]
	body := map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships",
		"value":          page,
	}
	if page == nil {
		body["value"] = []any{}
	}
	if end < len(all) {
		next := end
		host := r.Host
		switch mode {
		case "loop":
			if off > 0 {
				next = size // back to the second page
			}
		case "foreign":
			if _, port, ok := strings.Cut(r.Host, ":"); ok {
				host = "localhost:" + port
			}
		}
		body["@odata.nextLink"] = "https://" + host + r.URL.Path + "?$skiptoken=" + encodeOffset("gdap", next)
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Sim) serveCustomers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	off := 0
	if q.Get("seekOperation") == "Next" {
		var ok bool
		if off, ok = decodeOffset(r.Header.Get("MS-ContinuationToken"), "pc"); !ok || off == 0 {
			writeAPIError(w, APIPartnerCenter, http.StatusBadRequest, "400", "The continuation token is missing or invalid.")
			return
		}
	}
	s.mu.Lock()
	var all []map[string]any
	for _, c := range s.dir.customers {
		if c.NotInPartnerCenter {
			continue
		}
		all = append(all, map[string]any{
			"id": c.TenantID,
			"companyProfile": map[string]any{
				"tenantId": c.TenantID, "domain": c.Domain, "companyName": c.Name,
				"attributes": map[string]string{"objectType": "CustomerCompanyProfile"},
			},
			"relationshipToPartner": "reseller",
			"attributes":            map[string]string{"objectType": "Customer"},
		})
	}
	size := s.pageSizeLocked()
	s.mu.Unlock()
	if n, err := strconv.Atoi(q.Get("size")); err == nil && n > 0 {
		size = n
	}
	end := min(off+size, len(all))
	page := all[min(off, len(all)):end]
	if page == nil {
		page = []map[string]any{}
	}
	links := map[string]any{"self": map[string]any{"uri": "/customers?size=" + strconv.Itoa(size), "method": "GET", "headers": []any{}}}
	if end < len(all) {
		links["next"] = map[string]any{
			"uri":     "/customers?size=" + strconv.Itoa(size) + "&seekOperation=Next",
			"method":  "GET",
			"headers": []map[string]string{{"key": "MS-ContinuationToken", "value": encodeOffset("pc", end)}},
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"totalCount": len(page),
		"items":      page,
		"links":      links,
		"attributes": map[string]string{"objectType": "Collection"},
	})
}

// encodeOffset makes an opaque paging token; decodeOffset reads it ("" is 0).
func encodeOffset(kind string, off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.Itoa(off)))
}

func decodeOffset(tok, kind string) (int, bool) {
	if tok == "" {
		return 0, true
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	k, n, ok := strings.Cut(string(b), ":")
	off, err := strconv.Atoi(n)
	if !ok || k != kind || err != nil || off < 0 {
		return 0, false
	}
	return off, true
}

// tenantFailure is the error a redemption in t fails with, worded as Entra words it.
func tenantFailure(t *tenant, c *Client, resource string, now time.Time) *aadError {
	switch t.failCode {
	case 65001:
		return errConsent(c)
	case 50076:
		return errMFA(resource)
	case 50078:
		return newErr("invalid_grant", 50078, "Presented multi-factor authentication has expired due to policies configured by your administrator, you must refresh your multi-factor authentication to access '%s'.", resource).withSuberror("basic_action")
	case 50079:
		return newErr("invalid_grant", 50079, "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '%s'.", resource).withSuberror("basic_action")
	case 70043:
		return newErr("invalid_grant", 70043, "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on %s and the maximum allowed lifetime for this request is 43200.", now.Add(-24*time.Hour).UTC().Format(time.RFC3339Nano))
	case 53003:
		return newErr("invalid_grant", 53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.").withSuberror("message_only")
	case 700016:
		return errUnknownClient(c.ID, t)
	case 7000112:
		return newErr("unauthorized_client", 7000112, "Application '%s'(%s) is disabled.", c.ID, c.displayName())
	case 90099:
		return newErr("invalid_grant", 90099, "The application '%s' (%s) has not been authorized in the tenant '%s'. Applications must be authorized to access the customer tenant before partner delegated administrators can use them. Provide pre-consent or execute the appropriate Partner Center API to authorize the application.", c.displayName(), c.ID, t.id)
	case 50020:
		return errNoAccess(t, c)
	case 90033:
		// A tenant whose every redemption meets a server error: transient, after retries.
		e := newErr("temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
		e.status = http.StatusServiceUnavailable
		return e
	}
	return newErr("invalid_grant", t.failCode, "Simulated failure in tenant '%s'.", t.name)
}
