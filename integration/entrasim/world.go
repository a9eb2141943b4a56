package entrasim

import (
	"crypto/x509"
	"net/url"
	"strings"
)

// The simulated world. Fixed identifiers let tests and docs name them; none of them exists
// in real Entra ID.
const (
	// HomeTenantID is the partner's own tenant, where the user lives.
	HomeTenantID     = "0f1e2d3c-0000-4000-8000-00000000c0de"
	HomeTenantDomain = "contoso.onmicrosoft.com"

	// CustomerTenantID is a customer tenant in which the user has delegated access
	// (GDAP/AOBO): the user's refresh token is accepted there.
	CustomerTenantID     = "0f1e2d3c-0000-4000-8000-00000000fab1"
	CustomerTenantDomain = "fabrikam.onmicrosoft.com"

	// OtherTenantID is a tenant that exists but where the user has no access: token
	// requests for it fail with AADSTS50020.
	OtherTenantID     = "0f1e2d3c-0000-4000-8000-00000000b0b0"
	OtherTenantDomain = "northwind.onmicrosoft.com"

	// The one user; every interactive step signs in as this user.
	UserUPN  = "admin@contoso.onmicrosoft.com"
	UserOID  = "0f1e2d3c-0000-4000-8000-00000000ad01"
	UserName = "Contoso Admin"

	// PublicClientID is a public client (no secret allowed).
	PublicClientID = "0f1e2d3c-0000-4000-8000-00000000a001"
	// ExchangeClientID is the well-known Exchange Online PowerShell client id, public.
	ExchangeClientID = "a0c73c16-a7e3-4564-9a95-2bdf47383716"
	// ConfidentialClientID authenticates with ClientSecret.
	ConfidentialClientID = "0f1e2d3c-0000-4000-8000-00000000a002"
	// ClientSecret is a test-only secret of ConfidentialClientID.
	ClientSecret = "sim8Q~test-only.not-a-real-secret"
	// CertClientID authenticates with the certificate in CertClientPEMFile.
	CertClientID = "0f1e2d3c-0000-4000-8000-00000000a003"
)

// Scopes of the resources the project talks to, for tests.
const (
	PartnerCenterScope = "https://api.partnercenter.microsoft.com/user_impersonation"
	GraphScope         = "https://graph.microsoft.com/.default"
	AzureDevOpsScope   = "499b84ac-1321-427f-aa17-267ca6975798/.default"
)

// graphResource is what a bare scope such as "User.Read" refers to.
const graphResource = "https://graph.microsoft.com"

// Client is an application registration.
type Client struct {
	ID   string
	Name string // display name used in error texts; the id if empty
	// Public clients must not present a secret or assertion.
	Public bool
	// Secret, when set, is the confidential client's password.
	Secret string
	// SecretExpired makes a correct secret fail with AADSTS7000222.
	SecretExpired bool
	// Certificate, when set, is the key a confidential client signs its client
	// assertion with (x5t or x5t#S256 header names it).
	Certificate *x509.Certificate
	// RedirectURIs lists the allowed redirect URIs exactly. Empty allows any
	// http://localhost:PORT or http://127.0.0.1:PORT, as Entra does for loopback
	// redirects of native apps.
	RedirectURIs []string
}

func (c *Client) displayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// redirectAllowed reports whether uri may receive this client's authorization codes.
func (c *Client) redirectAllowed(uri string) bool {
	if len(c.RedirectURIs) > 0 {
		for _, allowed := range c.RedirectURIs {
			if uri == allowed {
				return true
			}
		}
		return false
	}
	return isLoopbackRedirect(uri)
}

// isLoopbackRedirect accepts http://localhost[:port][/path] and the 127.0.0.1 form; Entra
// ignores the port of loopback redirect URIs.
func isLoopbackRedirect(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" {
		return false
	}
	host := u.Hostname()
	return host == "localhost" || host == "127.0.0.1"
}

// tenant is a directory. userAccess says whether the user may get tokens in it:
// always in the home tenant, through GDAP in customer tenants.
type tenant struct {
	id         string
	domain     string
	name       string
	userAccess bool
	failCode   int // AADSTS code a refresh-token redemption here fails with; 0: none (directory.go)
}

// AddTenant adds a customer tenant in which the user's refresh token is accepted
// (GDAP/AOBO). Adding a known id again updates its domain and grants access.
func (s *Sim) AddTenant(id, domain string) {
	s.addTenant(id, domain, true)
}

// AddTenantNoAccess adds a tenant that exists but where the user has no access;
// token requests for it fail with AADSTS50020.
func (s *Sim) AddTenantNoAccess(id, domain string) {
	s.addTenant(id, domain, false)
}

func (s *Sim) addTenant(id, domain string, access bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, _, _ := strings.Cut(domain, ".")
	s.addTenantLocked(id, domain, name, access)
}

func (s *Sim) addTenantLocked(id, domain, name string, access bool) {
	id, domain = strings.ToLower(id), strings.ToLower(domain)
	if old, ok := s.tenants[id]; ok {
		delete(s.domains, old.domain)
	}
	s.tenants[id] = &tenant{id: id, domain: domain, name: name, userAccess: access}
	if domain != "" {
		s.domains[domain] = id
	}
}

// AddClient registers an application, replacing one with the same id.
func (s *Sim) AddClient(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	s.clients[strings.ToLower(c.ID)] = &c
}

// tenantRef is the outcome of resolving the tenant segment of a path.
type tenantRef struct {
	seg    string  // as written in the path
	t      *tenant // nil for common/organizations and unknown tenants
	shared bool    // common or organizations: the user's home tenant for user flows
}

// resolveTenant maps a path segment (GUID, verified domain, common, organizations) to a
// tenant. The caller holds s.mu.
func (s *Sim) resolveTenant(seg string) tenantRef {
	key := strings.ToLower(seg)
	switch key {
	case "common", "organizations":
		return tenantRef{seg: seg, shared: true}
	}
	if t, ok := s.tenants[key]; ok {
		return tenantRef{seg: seg, t: t}
	}
	if id, ok := s.domains[key]; ok {
		return tenantRef{seg: seg, t: s.tenants[id]}
	}
	return tenantRef{seg: seg}
}

// known reports whether the reference names a tenant Entra would recognise.
func (r tenantRef) known() bool { return r.shared || r.t != nil }

// forUser returns the tenant a user flow lands in: the named tenant, or the home
// tenant for common and organizations.
func (s *Sim) forUser(r tenantRef) *tenant {
	if r.shared {
		return s.tenants[HomeTenantID]
	}
	return r.t
}

func (s *Sim) defaultWorld() {
	s.addTenantLocked(HomeTenantID, HomeTenantDomain, "Contoso", true)
	s.addTenantLocked(CustomerTenantID, CustomerTenantDomain, "Fabrikam", true)
	s.addTenantLocked(OtherTenantID, OtherTenantDomain, "Northwind", false)
	for _, c := range []Client{
		{ID: PublicClientID, Name: "pctoken-helper (sim public)", Public: true},
		{ID: ExchangeClientID, Name: "Microsoft Exchange REST API Based Powershell", Public: true},
		{ID: ConfidentialClientID, Name: "pctoken-helper (sim confidential)", Secret: ClientSecret},
		{ID: CertClientID, Name: "pctoken-helper (sim certificate)", Certificate: s.pki.clientCert},
	} {
		s.clients[strings.ToLower(c.ID)] = &c
	}
}
