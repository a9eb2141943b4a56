package release

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The default is the six targets README.md's Install section lists.
func TestTargets(t *testing.T) {
	var got []string
	for _, tg := range Targets {
		got = append(got, tg.String())
	}
	want := []string{"linux/amd64", "linux/arm64", "windows/amd64", "windows/arm64", "darwin/amd64", "darwin/arm64"}
	if !slices.Equal(got, want) {
		t.Errorf("Targets = %q, want %q", got, want)
	}
	ts, err := ParseTargets("windows/arm64, linux/amd64,windows/arm64")
	if err != nil || len(ts) != 2 || ts[0].String() != "windows/arm64" || ts[1].String() != "linux/amd64" {
		t.Errorf("ParseTargets = %v, %v", ts, err)
	}
	if _, err := ParseTargets("linux/386"); err == nil || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("ParseTargets(linux/386) = %v, want an error listing the targets", err)
	}
}

// A stamp goes into -ldflags: nothing that could split it or add a flag gets through.
func TestStampCheck(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ok := Stamp{Version: "v1.2.3-rc.1+meta", Commit: "0123456789abcdef", Date: date}
	if err := ok.check(); err != nil {
		t.Errorf("%+v: %v", ok, err)
	}
	for _, bad := range []Stamp{
		{Version: "v1 -X evil", Commit: "0123456", Date: date},
		{Version: "-v1", Commit: "0123456", Date: date},
		{Version: "v1.2.3", Commit: "HEAD", Date: date},
		{Version: "v1.2.3", Commit: "0123456"},
		{Version: "v1.2.3", Commit: "0123456", Date: time.Date(1979, 12, 31, 0, 0, 0, 0, time.UTC)},
	} {
		if err := bad.check(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if n := ok.ArchiveName(Target{"windows", "arm64"}); n != "pctoken-helper_1.2.3-rc.1+meta_windows_arm64.zip" {
		t.Errorf("ArchiveName = %s", n)
	}
}

func TestStampManifest(t *testing.T) {
	in := []byte("@{\n    RootModule = 'x.psm1'\n    ModuleVersion        = '0.0.0'\n}\n")
	if got := StampManifest(in, "v1.20.3-rc.1"); !bytes.Contains(got, []byte("ModuleVersion        = '1.20.3'")) {
		t.Errorf("StampManifest:\n%s", got)
	}
	if got := StampManifest(in, "nightly"); !bytes.Equal(got, in) {
		t.Errorf("a version without digits changed the manifest:\n%s", got)
	}
}

// The same entries and date give the same bytes, whatever the clock says.
func TestArchivesAreReproducible(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	entries := []entry{{name: "bin", mode: 0o755, data: []byte("binary")}, {name: "d/", mode: 0o755 | os.ModeDir}, {name: "d/f", mode: 0o644, data: []byte("f")}}
	for name, pack := range map[string]func([]entry, time.Time) ([]byte, error){"tar.gz": tarGz, "zip": zipArchive} {
		a, err := pack(entries, date)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // a second later: a leaked clock reading would show
		b, err := pack(entries, date.UTC())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two packs of the same entries differ", name)
		}
	}
}
