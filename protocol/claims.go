package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxClaimsBytes bounds a claims challenge; real ones are a few hundred bytes.
const MaxClaimsBytes = 16 << 10

// ParseClaims reads a claims challenge as get --claims takes it: the JSON object
// itself, or that object base64-encoded (standard or URL alphabet, padded or not), as
// a resource's WWW-Authenticate header carries it (claims="eyJhY2Nlc3NfdG9rZW4iOnsi...").
// It returns the object as compact JSON.
func ParseClaims(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxClaimsBytes {
		return "", fmt.Errorf("the claims challenge is longer than %d bytes", MaxClaimsBytes)
	}
	raw := []byte(s)
	if !strings.HasPrefix(s, "{") {
		decoded, err := decodeBase64(s)
		if err != nil {
			return "", errors.New("the claims challenge is neither a JSON object nor base64 of one")
		}
		raw = decoded
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", errors.New("the claims challenge is not a JSON object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return "", errors.New("the claims challenge is not a JSON object")
	}
	return out.String(), nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}
