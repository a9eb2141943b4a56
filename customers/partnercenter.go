package customers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/settings"
)

// CustomersPath is Partner Center's customer list.
const CustomersPath = "/v1/customers"

// continuationHeader is the one header of links.next that is sent back.
const continuationHeader = "MS-ContinuationToken"

type pcPage struct {
	Items []struct {
		ID             string `json:"id"`
		CompanyProfile struct {
			TenantID    string `json:"tenantId"`
			Domain      string `json:"domain"`
			CompanyName string `json:"companyName"`
		} `json:"companyProfile"`
	} `json:"items"`
	Links struct {
		Next *struct {
			URI     string `json:"uri"`
			Method  string `json:"method"`
			Headers []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"headers"`
		} `json:"next"`
	} `json:"links"`
}

// NextPage is Partner Center's links.next: a URI (usually relative to the API root)
// and the continuation token to send with it.
type NextPage struct {
	URI          string
	Continuation string
}

// DecodePartnerCenterPage reads one page of customers and its links.next (nil on the
// last page). Customers without a GUID tenant id are skipped (skipped counts them).
func DecodePartnerCenterPage(b []byte) (ts []Tenant, next *NextPage, skipped int, err error) {
	var p pcPage
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, nil, 0, fmt.Errorf("not a page of customers: %w", err)
	}
	for _, it := range p.Items {
		tid := strings.ToLower(strings.TrimSpace(it.CompanyProfile.TenantID))
		if tid == "" {
			tid = strings.ToLower(strings.TrimSpace(it.ID))
		}
		if !settings.IsGUID(tid) {
			skipped++
			continue
		}
		ts = append(ts, Tenant{
			ID:     tid,
			Name:   Clean(it.CompanyProfile.CompanyName, maxNameRunes),
			Domain: Clean(it.CompanyProfile.Domain, 253),
			Source: SourcePartnerCenter,
		})
	}
	if n := p.Links.Next; n != nil && n.URI != "" {
		if n.Method != "" && !strings.EqualFold(n.Method, http.MethodGet) {
			return nil, nil, 0, fmt.Errorf("links.next asks for %s, not GET", Clean(n.Method, 20))
		}
		next = &NextPage{URI: n.URI}
		for _, h := range n.Headers {
			if strings.EqualFold(h.Key, continuationHeader) {
				next.Continuation = h.Value
			}
		}
		if len(next.Continuation) > maxLinkBytes || strings.ContainsAny(next.Continuation, "\r\n\x00") {
			return nil, nil, 0, fmt.Errorf("links.next carries an unusable continuation token")
		}
	}
	return ts, next, skipped, nil
}

// PartnerCenterCustomers lists the partner's customers, following links.next (with
// its MS-ContinuationToken) while it stays on Partner Center's host.
func (c *Client) PartnerCenterCustomers(ctx context.Context) ([]Tenant, error) {
	const name = "Partner Center"
	u, err := sameHost(c.PartnerCenter, CustomersPath)
	if err != nil {
		return nil, failure.Errorf(failure.Usage, "failed to list customers: %w", err)
	}
	seen := loopGuard{}
	var all []Tenant
	var header http.Header
	for page := 1; ; page++ {
		if page > c.maxPages() {
			return nil, tooManyPages(name, c.maxPages())
		}
		if err := seen.check(name, u.String()+"\x00"+header.Get(continuationHeader)); err != nil {
			return nil, err
		}
		body, err := c.get(ctx, c.PartnerCenter, u, header)
		if err != nil {
			return nil, err
		}
		ts, next, skipped, err := DecodePartnerCenterPage(body)
		if err != nil {
			return nil, failure.Errorf(failure.Unexpected, "failed to read page %d of customers: %w", page, err)
		}
		if skipped > 0 {
			c.logf("page %d: skipped %d customers without a tenant id", page, skipped)
		}
		all = append(all, ts...)
		if next == nil {
			return Dedupe(all), nil
		}
		if u, err = sameHost(c.PartnerCenter, apiRooted(next.URI)); err != nil {
			return nil, failure.Errorf(failure.Unexpected, "failed to read page %d of customers: %w", page+1, err)
		}
		header = http.Header{}
		if next.Continuation != "" {
			header.Set(continuationHeader, next.Continuation)
		}
	}
}

// apiRooted puts a relative links.next under the API's version root: Partner Center
// writes it relative to /v1 ("/customers?size=40&seekOperation=Next"). Absolute links
// and links already under /v1 are left as they are.
func apiRooted(uri string) string {
	if strings.Contains(uri, "://") || strings.HasPrefix(uri, "//") {
		return uri
	}
	if !strings.HasPrefix(uri, "/") {
		uri = "/" + uri
	}
	if uri == "/v1" || strings.HasPrefix(uri, "/v1/") || strings.HasPrefix(uri, "/v1?") {
		return uri
	}
	return "/v1" + uri
}
