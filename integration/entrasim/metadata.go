package entrasim

import (
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/url"
	"strings"
)

// openIDConfig is the discovery document, trimmed to what clients read but with the
// endpoints Entra lists.
type openIDConfig struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	HTTPLogoutSupported               bool     `json:"http_logout_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TenantRegionScope                 string   `json:"tenant_region_scope,omitempty"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	CloudGraphHostName                string   `json:"cloud_graph_host_name"`
	MSGraphHost                       string   `json:"msgraph_host"`
}

func (s *Sim) serveOpenIDConfig(w http.ResponseWriter, r *http.Request, rc *reqCtx, seg string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	ref := s.resolveTenant(seg)
	s.mu.Unlock()
	if !ref.known() {
		e := errUnknownTenant(seg)
		e.err = "invalid_tenant" // discovery words it so; the token endpoint says invalid_request
		s.writeError(w, rc, e)
		return
	}
	// A named tenant (GUID or domain) answers with its GUID everywhere; common and
	// organizations keep their name in the endpoints and leave the issuer templated.
	pathTenant, issuerTenant := strings.ToLower(seg), "{tenantid}"
	if ref.t != nil {
		pathTenant, issuerTenant = ref.t.id, ref.t.id
	}
	base := s.url + "/" + pathTenant
	writeJSON(w, http.StatusOK, openIDConfig{
		TokenEndpoint:                     base + "/oauth2/v2.0/token",
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		JWKSURI:                           base + "/discovery/v2.0/keys",
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "id_token token"},
		ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
		Issuer:                            s.url + "/" + issuerTenant + "/v2.0",
		UserinfoEndpoint:                  "https://graph.microsoft.com/oidc/userinfo",
		AuthorizationEndpoint:             base + "/oauth2/v2.0/authorize",
		DeviceAuthorizationEndpoint:       base + "/oauth2/v2.0/devicecode",
		HTTPLogoutSupported:               true,
		FrontchannelLogoutSupported:       true,
		EndSessionEndpoint:                base + "/oauth2/v2.0/logout",
		ClaimsSupported: []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
			"cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce",
			"preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		TenantRegionScope:  "EU",
		CloudInstanceName:  "microsoftonline.com",
		CloudGraphHostName: "graph.windows.net",
		MSGraphHost:        "graph.microsoft.com",
	})
}

type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
}

func (s *Sim) serveKeys(w http.ResponseWriter, r *http.Request, rc *reqCtx, seg string) {
	s.mu.Lock()
	ref := s.resolveTenant(seg)
	s.mu.Unlock()
	if !ref.known() {
		e := errUnknownTenant(seg)
		e.err = "invalid_tenant"
		s.writeError(w, rc, e)
		return
	}
	issuer := s.url + "/{tenantid}/v2.0"
	if ref.t != nil {
		issuer = s.url + "/" + ref.t.id + "/v2.0"
	}
	pub := &s.pki.signKey.PublicKey
	writeJSON(w, http.StatusOK, map[string][]jwk{"keys": {{
		Kty:    "RSA",
		Use:    "sig",
		Kid:    s.pki.signKID,
		X5t:    s.pki.signKID,
		N:      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		X5c:    []string{base64.StdEncoding.EncodeToString(s.pki.signCert.Raw)},
		Issuer: issuer,
	}}})
}

// publicKey is the token signing key, for validators in tests.
func (s *Sim) publicKey() *rsa.PublicKey { return &s.pki.signKey.PublicKey }

type instanceMetadata struct {
	PreferredNetwork string   `json:"preferred_network"`
	PreferredCache   string   `json:"preferred_cache"`
	Aliases          []string `json:"aliases"`
}

// serveInstanceDiscovery answers /common/discovery/instance, which MSAL calls when
// instance discovery is on. Only this simulator's own host is a known instance.
func (s *Sim) serveInstanceDiscovery(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	authz, err := url.Parse(r.URL.Query().Get("authorization_endpoint"))
	if err != nil || authz.Scheme != "https" || !strings.EqualFold(authz.Host, s.host) {
		s.writeError(w, rc, newErr("invalid_instance", 50049, "Unknown or invalid instance."))
		return
	}
	tenantSeg, _, _ := strings.Cut(strings.TrimPrefix(authz.Path, "/"), "/")
	if tenantSeg == "" {
		tenantSeg = "common"
	}
	writeJSON(w, http.StatusOK, struct {
		TenantDiscoveryEndpoint string             `json:"tenant_discovery_endpoint"`
		APIVersion              string             `json:"api-version"`
		Metadata                []instanceMetadata `json:"metadata"`
	}{
		TenantDiscoveryEndpoint: s.url + "/" + tenantSeg + "/v2.0/.well-known/openid-configuration",
		APIVersion:              "1.1",
		Metadata:                []instanceMetadata{{PreferredNetwork: s.host, PreferredCache: s.host, Aliases: []string{s.host}}},
	})
}
