package consent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/pctoken/pctoken-helper/redact"
)

// verifierBytes is the entropy of a PKCE verifier: RFC 7636 section 4.1 recommends
// 32 octets, which base64url-encode to 43 characters, the shortest allowed.
const verifierBytes = 32

// NewPKCE returns a PKCE verifier (kept by the client, sent with the code redemption)
// and its S256 challenge (sent in the authorization URL), per RFC 7636.
func NewPKCE() (verifier, challenge string, err error) {
	b := make([]byte, verifierBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate pkce verifier: %w", err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	redact.Register(verifier)
	return verifier, PKCEChallenge(verifier), nil
}

// PKCEChallenge is the S256 challenge of verifier: base64url(sha256(verifier))
// without padding.
func PKCEChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// NewState returns an unguessable value for the authorization request's state
// parameter (128 random bits in URL-safe base32).
func NewState() (string, error) {
	return rand.Text(), nil
}
