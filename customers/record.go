package customers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// RecordVersion is the format of the relationships record.
const RecordVersion = 1

// Record is what the last successful Graph listing saw, kept so that status
// --warn-days can warn before a relationship ends without anyone listing again. It is
// saved as <config dir>/tenants/<profile>.json, 0600 in a 0700 folder.
type Record struct {
	Version int       `json:"version"`
	Profile string    `json:"profile"`
	Source  string    `json:"source"`
	SeenAt  time.Time `json:"seen_at"`
	// Relationships are every relationship listed, not merged per tenant: one ending
	// without auto-extension matters even when another, newer one exists.
	Relationships []Relationship `json:"relationships"`
}

// RecordPath is where the record of profile lives under the config dir.
func RecordPath(configDir, profile string) string {
	return filepath.Join(configDir, "tenants", profile+".json")
}

// SaveRecord writes r atomically.
func SaveRecord(configDir string, r Record) error {
	r.Version = RecordVersion
	path := RecordPath(configDir, r.Profile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("failed to save the relationships seen: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to save the relationships seen: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to save the relationships seen: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("failed to save the relationships seen: %w", err)
	}
	return nil
}

// ErrNoRecord is LoadRecord's error when tenants never listed for the profile.
var ErrNoRecord = errors.New("no relationships recorded: run pctoken-helper tenants first")

// LoadRecord reads the record of profile.
func LoadRecord(configDir, profile string) (Record, error) {
	b, err := os.ReadFile(RecordPath(configDir, profile))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, ErrNoRecord
	}
	if err != nil {
		return Record{}, fmt.Errorf("failed to read the relationships seen: %w", err)
	}
	return DecodeRecord(b)
}

// DecodeRecord parses a record file.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("failed to read the relationships seen: %w", err)
	}
	if r.Version != RecordVersion {
		return Record{}, fmt.Errorf("failed to read the relationships seen: version %d, want %d", r.Version, RecordVersion)
	}
	for i := range r.Relationships {
		rel := &r.Relationships[i]
		rel.Name, rel.Status = Clean(rel.Name, maxNameRunes), Clean(rel.Status, 40)
	}
	return r, nil
}

// EndingWithin returns the relationships that grant access now, end within d of now
// and do not extend themselves: what status --warn-days warns about.
func (r Record) EndingWithin(now time.Time, d time.Duration) []Relationship {
	var out []Relationship
	for _, rel := range r.Relationships {
		if grantsAccess(rel.Status) && !rel.AutoExtends() && !rel.EndDateTime.IsZero() && rel.EndDateTime.Before(now.Add(d)) {
			out = append(out, rel)
		}
	}
	return out
}
