package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
	"unicode"
)

// Key names one cached access token: what was asked for, by whom, and where.
type Key struct {
	Profile   string
	ClientID  string
	Authority string // authority host URL, e.g. https://login.microsoftonline.com
	Tenant    string // the target tenant id or domain as requested
	Scopes    []string
}

// keyDomain starts every hashed key, so a change of encoding gets new file names
// instead of reading old files under a different meaning.
const keyDomain = "pctoken-helper cache key v1"

// Canonical returns k in the form that is hashed for its file name and kept in the
// file. Two requests Entra ID answers with the same token should share one entry:
// Entra ID compares client ids, tenant ids and domains, authority hosts and scope
// values without regard to case, so those are lower-cased. Scopes are also split on
// white space (the protocol sends them space-separated), stripped of empty values,
// sorted and deduplicated. The authority loses any trailing slash. The profile is a
// name the user chose and is kept exactly.
func (k Key) Canonical() Key {
	return Key{
		Profile:   k.Profile,
		ClientID:  strings.ToLower(strings.TrimSpace(k.ClientID)),
		Authority: strings.TrimRight(strings.ToLower(strings.TrimSpace(k.Authority)), "/"),
		Tenant:    strings.ToLower(strings.TrimSpace(k.Tenant)),
		Scopes:    canonicalScopes(k.Scopes),
	}
}

func canonicalScopes(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if strings.IndexFunc(s, unicode.IsSpace) < 0 {
			if s != "" {
				out = append(out, strings.ToLower(s))
			}
			continue
		}
		for _, f := range strings.Fields(s) {
			out = append(out, strings.ToLower(f))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ID is the canonical file name stem of k: the SHA-256, in hex, of the canonical
// key's fields in a fixed order, each prefixed with its length, so that no two
// different keys share an encoding ({"ab","c"} and {"a","bc"} differ).
func (k Key) ID() string {
	return k.Canonical().id()
}

// id hashes a key that is already canonical.
func (k Key) id() string {
	b := make([]byte, 0, 128+16*len(k.Scopes))
	b = appendField(b, keyDomain)
	b = appendField(b, k.Profile)
	b = appendField(b, k.ClientID)
	b = appendField(b, k.Authority)
	b = appendField(b, k.Tenant)
	b = binary.AppendUvarint(b, uint64(len(k.Scopes)))
	for _, s := range k.Scopes {
		b = appendField(b, s)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// equal reports whether two canonical keys are the same; comparing the fields and
// not only the IDs is what turns a hash collision or a planted file into a miss.
func (k Key) equal(o Key) bool {
	return k.Profile == o.Profile &&
		k.ClientID == o.ClientID &&
		k.Authority == o.Authority &&
		k.Tenant == o.Tenant &&
		slices.Equal(k.Scopes, o.Scopes)
}
