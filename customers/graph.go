package customers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/settings"
)

// RelationshipsPath is Graph's list of the partner's GDAP relationships (delegated
// permission DelegatedAdminRelationship.Read.All).
const RelationshipsPath = "/v1.0/tenantRelationships/delegatedAdminRelationships"

// graphPage is one page of delegatedAdminRelationships, the fields used.
type graphPage struct {
	Value []struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
		Customer    struct {
			TenantID    string `json:"tenantId"`
			DisplayName string `json:"displayName"`
		} `json:"customer"`
		Status             string `json:"status"`
		EndDateTime        string `json:"endDateTime"`
		AutoExtendDuration string `json:"autoExtendDuration"`
		AccessDetails      struct {
			UnifiedRoles []struct {
				RoleDefinitionID string `json:"roleDefinitionId"`
			} `json:"unifiedRoles"`
		} `json:"accessDetails"`
	} `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}

// DecodeGraphPage reads one page of relationships and its @odata.nextLink ("" on the
// last page). Entries whose customer tenant id is not a GUID are skipped (skipped
// counts them); text is cleaned and bounded.
func DecodeGraphPage(b []byte) (rels []Relationship, next string, skipped int, err error) {
	var p graphPage
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, "", 0, fmt.Errorf("not a page of GDAP relationships: %w", err)
	}
	for _, v := range p.Value {
		tid := strings.ToLower(strings.TrimSpace(v.Customer.TenantID))
		if !settings.IsGUID(tid) {
			skipped++
			continue
		}
		r := Relationship{
			ID:                 Clean(v.ID, 100),
			TenantID:           tid,
			Name:               Clean(v.Customer.DisplayName, maxNameRunes),
			Status:             Clean(v.Status, 40),
			AutoExtendDuration: Clean(v.AutoExtendDuration, 40),
		}
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v.EndDateTime)); err == nil {
			r.EndDateTime = t.UTC()
		}
		for _, role := range v.AccessDetails.UnifiedRoles {
			if id := Clean(role.RoleDefinitionID, 100); id != "" {
				r.Roles = append(r.Roles, RoleName(id))
			}
		}
		rels = append(rels, r)
	}
	return rels, p.NextLink, skipped, nil
}

// Relationships lists every GDAP relationship of the partner, following
// @odata.nextLink while it stays on Graph's host.
func (c *Client) Relationships(ctx context.Context) ([]Relationship, error) {
	const name = "Microsoft Graph"
	u, err := sameHost(c.Graph, RelationshipsPath)
	if err != nil {
		return nil, failure.Errorf(failure.Usage, "failed to list GDAP relationships: %w", err)
	}
	seen := loopGuard{}
	var all []Relationship
	for page := 1; ; page++ {
		if page > c.maxPages() {
			return nil, tooManyPages(name, c.maxPages())
		}
		if err := seen.check(name, u.String()); err != nil {
			return nil, err
		}
		body, err := c.get(ctx, c.Graph, u, nil)
		if err != nil {
			return nil, err
		}
		rels, next, skipped, err := DecodeGraphPage(body)
		if err != nil {
			return nil, failure.Errorf(failure.Unexpected, "failed to read page %d of GDAP relationships: %w", page, err)
		}
		if skipped > 0 {
			c.logf("page %d: skipped %d relationships without a customer tenant id", page, skipped)
		}
		all = append(all, rels...)
		if next == "" {
			return all, nil
		}
		if u, err = sameHost(c.Graph, next); err != nil {
			return nil, failure.Errorf(failure.Unexpected, "failed to read page %d of GDAP relationships: %w", page+1, err)
		}
	}
}

// roleNames are the Entra built-in roles GDAP relationships most often hold, by their
// template ids (the same in every tenant); others are shown as ids.
var roleNames = map[string]string{
	"62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
	"f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
	"88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
	"9360feb5-f418-4baa-8175-e2a00bac4301": "Directory Writers",
	"fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
	"729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
	"29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
	"f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
	"69091246-20e8-4a56-aa4d-066075b2a7a8": "Teams Administrator",
	"3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
	"9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
	"158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
	"194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
	"5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
	"f023fd81-a637-4b56-95fd-791ac0226033": "Service Support Administrator",
	"b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
	"e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
	"7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
	"c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
	"4d6ac14f-3453-41d0-bef9-a3e0c569773a": "License Administrator",
}

// RoleName is the name of a built-in role template id, else the id.
func RoleName(id string) string {
	if n, ok := roleNames[strings.ToLower(id)]; ok {
		return n
	}
	return id
}
