// Package keyvault holds a profile's refresh token in an Azure Key Vault secret, so
// that one consent serves a fleet of machines (Microsoft's Secure Application Model
// guidance: keep the refresh token "somewhere secure, such as Azure Key Vault").
//
// The secret's value is the bare refresh token, exactly what other SAM tools (the
// PowerShell samples, New-PartnerAccessToken users, CIPP) read and write; the helper's
// own metadata (when and by whom a version was written, for which app and tenant) is in
// the secret's tags. A secret written by another tool is adopted as it is, and its
// foreign tags are carried over to the versions the helper writes.
//
// Key Vault has no compare-and-set for secrets, every write creates a version that
// can never be deleted alone, backup fails beyond 500 versions of one secret, and a
// vault accepts 300 creates per 10 s. So the store writes rarely: a rotated token is
// written back only when the version read is older than RotateAfter (plus a per-process
// jitter, so that a fleet does not write at once), after reading again to see that
// nobody wrote meanwhile; renew, consent and import always write. Entra does not revoke
// a refresh token when it rotates it, so a token not written back costs nothing: the
// vault's version stays valid, and every machine keeps using it until the next write.
// Versions beyond the newest few are disabled after a write.
//
// Requests go only to the vault host of the secret identifier, over https, through the
// proxy named in HTTPS_PROXY if any, and never follow a redirect. The credential that
// reaches the vault is an azidentity credential chosen by name (managed identity,
// workload identity, environment, Azure CLI or the default chain), never the refresh
// token the vault holds; its access tokens can be kept in the helper's access-token
// cache (CachedCredential), so a new process does not fetch one again.
package keyvault
