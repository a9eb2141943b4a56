package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), "profiles"))
	rotated := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	want := Profile{Name: "contoso", ClientID: "app", HomeTenant: "t1", Scopes: []string{"s"},
		Account: Account{Username: "u@x", HomeAccountID: "o.t1", HomeTenantID: "t1"}, RotatedAt: rotated}
	if err := d.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := d.Load("contoso")
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientID != "app" || got.Account != want.Account || !got.RotatedAt.Equal(rotated) || got.Name != "contoso" {
		t.Fatalf("round trip: got %+v", got)
	}
	fi, _ := os.Stat(filepath.Join(string(d), "contoso.json"))
	di, _ := os.Stat(string(d))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes: file %v, dir %v", fi.Mode().Perm(), di.Mode().Perm())
	}
	names, _ := d.List()
	if len(names) != 1 || names[0] != "contoso" {
		t.Fatalf("List = %v", names)
	}
	if err := d.Delete("contoso"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load("contoso"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Delete, Load err = %v", err)
	}
	if err := d.Delete("contoso"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestNamesThatEscapeTheFolderAreRefused(t *testing.T) {
	d := Dir(t.TempDir())
	for _, name := range []string{"../x", "a/b", "", ".hidden", "x\x00"} {
		if _, err := d.Load(name); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Load(%q) err = %v, want a name error", name, err)
		}
		if err := d.Save(Profile{Name: name, ClientID: "c"}); err == nil {
			t.Errorf("Save(%q) succeeded", name)
		}
	}
}

func TestDamagedProfileNamesTheRemedy(t *testing.T) {
	d := Dir(t.TempDir())
	os.WriteFile(filepath.Join(string(d), "p.json"), []byte("{trunc"), 0o600)
	_, err := d.Load("p")
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of a damaged file: %v", err)
	}
	if want := "pctoken-helper consent --profile p"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks the remedy %q", err, want)
	}
}

func TestDaysLeft(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		rotated time.Time
		want    int
	}{
		{time.Time{}, -1},
		{now, 90},
		{now.Add(-time.Second), 90},
		{now.Add(-89*24*time.Hour - time.Hour), 1},
		{now.Add(-90 * 24 * time.Hour), 0},
		{now.Add(-92 * 24 * time.Hour), -2},
	}
	for _, tt := range tests {
		if got := (Profile{RotatedAt: tt.rotated}).DaysLeft(now); got != tt.want {
			t.Errorf("DaysLeft(rotated %v) = %d, want %d", tt.rotated, got, tt.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"client_id":"a","account":{"username":"u"},"rotated_at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"client_id":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err == nil && p.ClientID == "" {
			t.Fatal("accepted a profile without client id")
		}
	})
}
