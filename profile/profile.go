// Package profile keeps the settings a later get needs, saved per profile at consent or
// import: the app, the cloud, the home tenant, the store and the consenting account.
// It never holds a secret: refresh tokens and client secrets live in the secure store.
package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/internal/safefs"
)

// ErrNotFound means no profile of that name was saved.
var ErrNotFound = errors.New("profile not found")

// Default is the profile used when none is named.
const Default = "default"

// Profile is what consent or import recorded. Zero fields mean "not set".
type Profile struct {
	Name string `json:"-"`

	ClientID          string `json:"client_id"`
	Cloud             string `json:"cloud,omitempty"`
	AuthorityHost     string `json:"authority_host,omitempty"`
	HomeTenant        string `json:"home_tenant,omitempty"`
	Store             string `json:"store,omitempty"`
	StoreDir          string `json:"store_dir,omitempty"`
	ClientCertificate string `json:"client_certificate,omitempty"`
	// StoredSecret records that consent --client-secret-stdin put the app's secret in
	// the secure store, so get knows this is a confidential client.
	StoredSecret bool     `json:"stored_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	Account      Account  `json:"account"`

	// KeyVaultSecret is the secret identifier of the azure-keyvault store.
	KeyVaultSecret string `json:"keyvault_secret,omitempty"`

	ConsentedAt time.Time `json:"consented_at,omitzero"`
	// RotatedAt is when a refresh token was last redeemed and its successor saved;
	// the 90-day inactivity window runs from here.
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	// Refused is the identity provider's last refusal of the refresh token itself
	// (expired, revoked, MFA or sign-in frequency), kept until a redemption succeeds
	// again: until then the profile needs consent.
	Refused *Refusal `json:"refused,omitempty"`
}

// Refusal is when and why the identity provider refused a profile's refresh token.
type Refusal struct {
	AADSTS string    `json:"aadsts,omitempty"` // e.g. "700082"
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Account is the signed-in user of the profile, as Entra reported it.
type Account struct {
	Username      string `json:"username,omitempty"`
	HomeAccountID string `json:"home_account_id,omitempty"` // "<oid>.<home tenant id>", MSAL's key
	HomeTenantID  string `json:"home_tenant_id,omitempty"`
}

// InactivityLimit is how long Entra keeps an unused refresh token.
const InactivityLimit = 90 * 24 * time.Hour

// DaysLeft is how many days, started ones included, remain of the inactivity window
// at now: 90 right after a rotation, 1 on its last day, and 0 or less once it has
// passed. It is 0 when the refresh token was refused since, and -1 when the profile
// has no recorded rotation.
func (p Profile) DaysLeft(now time.Time) int {
	if p.Refused != nil {
		return 0
	}
	if p.RotatedAt.IsZero() {
		return -1
	}
	const day = 24 * time.Hour
	left := p.RotatedAt.Add(InactivityLimit).Sub(now)
	if left <= 0 {
		return int(left / day)
	}
	return int((left + day - 1) / day)
}

// ValidName checks a profile name: it becomes a file name and a keyring key. (No
// regexp: compiling one at start-up would cost every cache hit.)
func ValidName(name string) error {
	ok := len(name) > 0 && len(name) <= 64
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '.' || c == '_' || c == '-')
	}
	if !ok {
		if len(name) > 80 {
			name = name[:80] + "..." // the message names it, it need not echo all of it
		}
		return fmt.Errorf("invalid profile name %q: use letters, digits, '.', '_' and '-' (at most 64)", name)
	}
	return nil
}

// Dir is the folder of saved profiles.
type Dir string

func (d Dir) path(name string) string { return filepath.Join(string(d), name+".json") }

// maxProfileSize bounds a profile file; a real one is under a kilobyte.
const maxProfileSize = 64 << 10

// Load reads the profile called name. A profile decides where the refresh token is
// sent (its authority host), so it is read only from a file of the user's own in
// folders no one else can write or swap (package safefs): anything else is an error
// naming the path, never a profile.
func (d Dir) Load(name string) (Profile, error) {
	if err := ValidName(name); err != nil {
		return Profile{}, err
	}
	if err := d.check(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Profile{Name: name}, ErrNotFound
		}
		return Profile{}, err
	}
	b, err := safefs.ReadFile(d.path(name), maxProfileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return Profile{Name: name}, ErrNotFound
	}
	var unsafe *safefs.UnsafeError
	if errors.As(err, &unsafe) {
		return Profile{}, fmt.Errorf("refusing profile %s: %w", name, err)
	}
	if errors.Is(err, safefs.ErrTooLarge) {
		return Profile{}, fmt.Errorf("profile file %s is damaged (%d KiB at most): run pctoken-helper consent --profile %s", d.path(name), maxProfileSize>>10, name)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("failed to read profile %q: %w", name, err)
	}
	p, err := Decode(b)
	if err != nil {
		return Profile{}, fmt.Errorf("profile file %s is damaged (%v): run pctoken-helper consent --profile %s", d.path(name), err, name)
	}
	p.Name = name
	return p, nil
}

// check refuses a profile folder, or the config folder holding it, that another user
// owns, can write, or could swap.
func (d Dir) check() error {
	for _, dir := range []string{filepath.Dir(string(d)), string(d)} {
		if _, err := safefs.CheckDir(dir); err != nil {
			var unsafe *safefs.UnsafeError
			if errors.As(err, &unsafe) {
				return fmt.Errorf("refusing the profiles: %w", err)
			}
			return err
		}
	}
	return nil
}

// Decode parses a saved profile.
func Decode(b []byte) (Profile, error) {
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return Profile{}, err
	}
	if p.ClientID == "" {
		return Profile{}, errors.New("no client_id")
	}
	return p, nil
}

// Save writes p atomically, 0600 in a 0700 folder.
func (d Dir) Save(p Profile) error {
	if err := ValidName(p.Name); err != nil {
		return err
	}
	for _, dir := range []string{filepath.Dir(string(d)), string(d)} {
		if _, err := safefs.EnsureDir(dir); err != nil {
			return fmt.Errorf("failed to prepare the profile folder: %w", err)
		}
	}
	// A profile someone else put in place is never rewritten as the helper's own.
	if err := safefs.CheckReplace(d.path(p.Name)); err != nil {
		return fmt.Errorf("refusing to replace profile %s: %w", p.Name, err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(d.path(p.Name), append(b, '\n'))
}

// Delete removes the saved profile; a missing one is not an error.
func (d Dir) Delete(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove profile %q: %w", name, err)
	}
	return nil
}

// List returns the names of all saved profiles, sorted.
func (d Dir) List() ([]string, error) {
	if err := d.check(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list profiles: %w", err)
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && !e.IsDir() && ValidName(name) == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to save %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("failed to save %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("failed to save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to save %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("failed to save %s: %w", path, err)
	}
	return nil
}
