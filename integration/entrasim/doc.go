// Package entrasim simulates Microsoft Entra ID's v2.0 endpoints on 127.0.0.1, faithfully
// enough that MSAL Go and the pctoken-helper binary run against it unchanged.
//
// It serves TLS with its own CA (CAFile, for SSL_CERT_FILE) and these endpoints, where
// {tenant} is a tenant GUID, a verified domain, "organizations" or "common":
//
//	/{tenant}/v2.0/.well-known/openid-configuration   issuer https://127.0.0.1:PORT/{tid}/v2.0
//	/{tenant}/discovery/v2.0/keys                     the RS256 signing key
//	/{tenant}/oauth2/v2.0/authorize                   the user approves at once (query, fragment, form_post)
//	/{tenant}/oauth2/v2.0/devicecode                  approved on the second poll by default
//	/{tenant}/oauth2/v2.0/token                       authorization_code, refresh_token, device_code, client_credentials
//	/{tenant}/oauth2/v2.0/logout
//	/common/discovery/instance                        knows only the simulator's own host
//	/devicelogin                                      the verification page
//
// The world: one user (UserUPN) in the home tenant, a customer tenant reached through
// GDAP where the user's refresh token is accepted, a tenant without access (AADSTS50020),
// two public clients, a confidential client with a secret and one with a certificate.
// AddTenant and AddClient extend it.
//
// Answers follow Entra: refresh tokens are opaque, rotate on every use and stay valid
// (unless SetStrictRotation), work only for their client (AADSTS700007) and in any
// tenant where the user has access; "scope" echoes the first resource's scopes only and
// never offline_access; errors carry error, error_description ("AADSTSn: text\r\nTrace
// ID: ...\r\nCorrelation ID: ...\r\nTimestamp: ..."), error_codes, timestamp, trace_id,
// correlation_id, error_uri and suberror, with status 400, or 401 for invalid_client.
//
// Controls make Entra's failures happen on demand: ExpireRefreshTokens (700082),
// RevokeRefreshTokens (50173), RequireMFA (50076), RequireConsent (65001), FailNext
// (5xx), ThrottleNext (429 with Retry-After), HangNext, SetLatency, SetTokenLifetime,
// SetStrictRotation (70000), SetAMR. Stats counts requests, grants, errors and refresh
// tokens. With Options.ControlAPI the same controls are served under /_sim/ for other
// processes (see integration/cmd/entrasim).
//
// The partner's customers (directory.go): AddCustomers lists customer tenants in
// Microsoft Graph's delegatedAdminRelationships and Partner Center's customers, both
// served on the simulator's host and paged, and sets per tenant the AADSTS code a
// refresh-token redemption there fails with (SetTenantFailure); DenyAPI, FailAPINext,
// SetAPIPageSize and SetGraphNextLink shape those APIs' answers; APIStats counts them.
//
// Where Entra's behaviour is unknown or unobservable the simulator picks a plausible
// answer: strict rotation (which Entra does not do for these clients) answers AADSTS70000,
// injected 5xx answer AADSTS90033 and 429 AADSTS90055, and the access token is a v2.0
// token (iss on the simulator's host) for every resource.
package entrasim
