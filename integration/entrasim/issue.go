package entrasim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// oidcScopes are the OpenID Connect scopes; they name no resource.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}

// scopeRequest is a parsed scope parameter.
type scopeRequest struct {
	resource    string   // the first resource named, with its scopes granted
	resScopes   []string // the requested scopes of that resource, as written
	permissions []string // their permission names (the part after the last "/")
	oidc        []string // openid, profile, email as requested (never offline_access)
	offline     bool     // offline_access was requested
}

// parseScopes splits a scope parameter the way Entra grants it: one token covers only
// the first resource named; scopes of other resources are dropped.
func parseScopes(raw string) scopeRequest {
	var req scopeRequest
	for _, sc := range strings.Fields(raw) {
		if lower := strings.ToLower(sc); oidcScopes[lower] {
			if lower == "offline_access" {
				req.offline = true
			} else if !slices.Contains(req.oidc, lower) {
				req.oidc = append(req.oidc, lower)
			}
			continue
		}
		res, perm := splitScope(sc)
		if req.resource == "" {
			req.resource = res
		}
		if sameResource(res, req.resource) && !slices.Contains(req.resScopes, sc) {
			req.resScopes = append(req.resScopes, sc)
			req.permissions = append(req.permissions, perm)
		}
	}
	return req
}

// splitScope separates "resource/permission"; a bare permission such as "User.Read"
// belongs to Microsoft Graph.
func splitScope(sc string) (resource, permission string) {
	i := strings.LastIndex(sc, "/")
	if i <= 0 {
		return graphResource, sc
	}
	res := strings.TrimRight(sc[:i], "/")
	if res == "" {
		return graphResource, sc[i+1:]
	}
	return res, sc[i+1:]
}

func sameResource(a, b string) bool {
	norm := func(r string) string {
		r = strings.ToLower(strings.TrimRight(r, "/"))
		if r == "00000003-0000-0000-c000-000000000000" {
			return graphResource
		}
		return r
	}
	return norm(a) == norm(b)
}

// audience is the resource a token is for; Graph when only OIDC scopes were asked.
func (q scopeRequest) audience() string {
	if q.resource == "" {
		return graphResource
	}
	return q.resource
}

// granted lists the delegated permissions in the token's scp claim. ".default" stands
// for what was consented: User.Read on Graph, user_impersonation elsewhere.
func (q scopeRequest) granted() []string {
	var out []string
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, p := range q.permissions {
		if p == ".default" {
			if sameResource(q.audience(), graphResource) {
				add("User.Read")
			} else {
				add("user_impersonation")
			}
			continue
		}
		add(p)
	}
	if len(out) == 0 {
		out = append(out, q.oidc...)
	}
	return out
}

// responseScope is the "scope" field of the answer: the requested scopes of the first
// resource (for ".default", the consented permissions too), then openid, profile and
// email if asked; never offline_access.
func (q scopeRequest) responseScope() string {
	var out []string
	for _, sc := range q.resScopes {
		if res, perm := splitScope(sc); perm == ".default" {
			for _, g := range q.granted() {
				if full := strings.TrimRight(res, "/") + "/" + g; !slices.Contains(out, full) {
					out = append(out, full)
				}
			}
		}
		out = append(out, sc)
	}
	return strings.Join(append(out, q.oidc...), " ")
}

// tokenResponse is a successful answer, fields in Entra's order.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	RefreshIn    int64  `json:"refresh_in,omitempty"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	ClientInfo   string `json:"client_info,omitempty"`
}

// userGrant is what a successful user grant hands to the minting step.
type userGrant struct {
	client     *Client
	authn      string // appidacr: "0" public, "1" secret, "2" certificate
	tenant     *tenant
	scopes     scopeRequest
	authTime   time.Time
	nonce      string
	wantRT     bool
	clientInfo bool
	// acrs are the authentication contexts a claims challenge asked for; Entra puts
	// those the sign-in satisfied in the token's acrs claim.
	acrs []string
}

// issueUser mints the tokens of a user grant and records the new refresh token.
func (s *Sim) issueUser(g userGrant) (tokenResponse, error) {
	now := s.now()
	s.mu.Lock()
	lifetime, amr := s.ctl.lifetime, slices.Clone(s.ctl.amr)
	s.mu.Unlock()

	iss := s.issuer(g.tenant.id)
	claims := jwt.MapClaims{
		"aud":                g.scopes.audience(),
		"iss":                iss,
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(lifetime).Unix(),
		"amr":                amr,
		"appid":              g.client.ID,
		"appidacr":           g.authn,
		"azp":                g.client.ID,
		"azpacr":             g.authn,
		"family_name":        "Admin",
		"given_name":         "Contoso",
		"idtyp":              "user",
		"name":               UserName,
		"oid":                UserOID,
		"scp":                strings.Join(g.scopes.granted(), " "),
		"sub":                guidFrom("sub/" + UserOID + "/" + g.scopes.audience()),
		"tid":                g.tenant.id,
		"unique_name":        UserUPN,
		"upn":                UserUPN,
		"preferred_username": UserUPN,
		"uti":                randomToken("", 16),
		"ver":                "2.0",
	}
	if len(g.acrs) > 0 {
		claims["acrs"] = g.acrs
	}
	if g.tenant.id != HomeTenantID {
		// A partner user acting in a customer tenant (GDAP) keeps their home identity provider.
		claims["idp"] = "https://sts.windows.net/" + HomeTenantID + "/"
	}
	at, err := s.sign(claims)
	if err != nil {
		return tokenResponse{}, err
	}
	resp := tokenResponse{
		TokenType:    "Bearer",
		Scope:        g.scopes.responseScope(),
		ExpiresIn:    int64(lifetime / time.Second),
		ExtExpiresIn: int64(lifetime / time.Second),
		AccessToken:  at,
	}
	if lifetime > 2*time.Hour {
		resp.RefreshIn = resp.ExpiresIn / 2
	}
	if slices.Contains(g.scopes.oidc, "openid") {
		idClaims := jwt.MapClaims{
			"aud":                g.client.ID,
			"iss":                iss,
			"iat":                now.Unix(),
			"nbf":                now.Unix(),
			"exp":                now.Add(lifetime).Unix(),
			"name":               UserName,
			"oid":                UserOID,
			"preferred_username": UserUPN,
			"sub":                guidFrom("sub/" + UserOID + "/" + g.client.ID),
			"tid":                g.tenant.id,
			"uti":                randomToken("", 16),
			"ver":                "2.0",
		}
		if g.nonce != "" {
			idClaims["nonce"] = g.nonce
		}
		if slices.Contains(g.scopes.oidc, "email") {
			idClaims["email"] = UserUPN
		}
		if resp.IDToken, err = s.sign(idClaims); err != nil {
			return tokenResponse{}, err
		}
	}
	if g.clientInfo {
		ci, _ := json.Marshal(map[string]string{"uid": UserOID, "utid": HomeTenantID})
		resp.ClientInfo = base64.RawURLEncoding.EncodeToString(ci)
	}
	if g.wantRT {
		// Entra's refresh tokens are opaque and long; this one is about 350 characters.
		resp.RefreshToken = randomToken("0.AAAA", 256)
		s.mu.Lock()
		s.rts[resp.RefreshToken] = &refreshToken{clientID: g.client.ID, issued: now, authTime: g.authTime}
		s.stats.RefreshTokensIssued++
		s.mu.Unlock()
	}
	return resp, nil
}

// issueApp mints an app-only token (client credentials): no refresh token, ID token or
// client_info, and no scope field, as Entra answers.
func (s *Sim) issueApp(c *Client, authn string, t *tenant, resource string) (tokenResponse, error) {
	now := s.now()
	s.mu.Lock()
	lifetime := s.ctl.lifetime
	s.mu.Unlock()
	sp := guidFrom("sp/" + c.ID + "/" + t.id)
	at, err := s.sign(jwt.MapClaims{
		"aud":      resource,
		"iss":      s.issuer(t.id),
		"iat":      now.Unix(),
		"nbf":      now.Unix(),
		"exp":      now.Add(lifetime).Unix(),
		"appid":    c.ID,
		"appidacr": authn,
		"azp":      c.ID,
		"azpacr":   authn,
		"idtyp":    "app",
		"oid":      sp,
		"sub":      sp,
		"tid":      t.id,
		"uti":      randomToken("", 16),
		"ver":      "2.0",
	})
	if err != nil {
		return tokenResponse{}, err
	}
	return tokenResponse{
		TokenType:    "Bearer",
		ExpiresIn:    int64(lifetime / time.Second),
		ExtExpiresIn: int64(lifetime / time.Second),
		AccessToken:  at,
	}, nil
}

func (s *Sim) issuer(tenantID string) string { return s.url + "/" + tenantID + "/v2.0" }

// sign makes an RS256 JWT with Entra's header (typ, alg, x5t, kid).
func (s *Sim) sign(claims jwt.MapClaims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["x5t"] = s.pki.signKID
	tok.Header["kid"] = s.pki.signKID
	signed, err := tok.SignedString(s.pki.signKey)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// Claims are the claims of an access token that fake API servers check.
type Claims struct {
	Audience string
	TenantID string
	ObjectID string
	UPN      string // empty for app-only tokens
	AppID    string
	Scopes   []string // delegated permissions (scp)
	AMR      []string
	AppOnly  bool // a client-credentials token
	IssuedAt time.Time
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
}

// ValidateAccessToken checks an access token as a resource server would: signature by
// this simulator, not expired (by the simulator's clock), issuer of a known tenant.
func (s *Sim) ValidateAccessToken(tok string) (Claims, error) {
	var mc jwt.MapClaims
	_, err := jwt.ParseWithClaims(tok, &mc, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.pki.signKID {
			return nil, errors.New("unknown signing key")
		}
		return s.publicKey(), nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now))
	if err != nil {
		return Claims{}, fmt.Errorf("invalid access token: %w", err)
	}
	str := func(k string) string { v, _ := mc[k].(string); return v }
	c := Claims{
		Audience: str("aud"),
		TenantID: str("tid"),
		ObjectID: str("oid"),
		UPN:      str("upn"),
		AppID:    str("appid"),
		Scopes:   strings.Fields(str("scp")),
		AppOnly:  str("idtyp") == "app",
	}
	if amr, ok := mc["amr"].([]any); ok {
		for _, a := range amr {
			if v, ok := a.(string); ok {
				c.AMR = append(c.AMR, v)
			}
		}
	}
	if exp, err := mc.GetExpirationTime(); err == nil && exp != nil {
		c.ExpiresAt = exp.Time
	}
	if iat, err := mc.GetIssuedAt(); err == nil && iat != nil {
		c.IssuedAt = iat.Time
	}
	s.mu.Lock()
	_, known := s.tenants[strings.ToLower(c.TenantID)]
	s.mu.Unlock()
	if !known || str("iss") != s.issuer(c.TenantID) {
		return Claims{}, fmt.Errorf("invalid access token: issuer %s", strconv.Quote(str("iss")))
	}
	return c, nil
}
