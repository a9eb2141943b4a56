// Package release builds the release of pctoken-helper: one archive per target (tar.gz
// for Linux and macOS, zip for Windows) holding the binary, README.md, LICENSE when
// there is one and the PowerShell module, and a SHA-256 checksums file that
// `sha256sum -c` reads. The same source, stamp and Go toolchain give the same bytes:
// binaries are built with -trimpath and CGO_ENABLED=0, and archive entries carry the
// stamped date, fixed owners and modes, in a fixed order.
//
// It is the small program GoReleaser would otherwise be (docs/releasing.md says why it
// is not GoReleaser); internal/cmd/release is its command line.
package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Name is the project's name: the binary's and the archives' prefix.
const Name = "pctoken-helper"

// ModuleDir is the PowerShell module's folder, relative to the source root; the
// archives carry it under its base name.
const ModuleDir = "powershell/PCTokenHelper"

// versionPackage is the package whose Version, Commit and Date the build stamps.
const versionPackage = "github.com/pctoken/pctoken-helper/cli"

// Target is one GOOS/GOARCH pair.
type Target struct{ OS, Arch string }

func (t Target) String() string { return t.OS + "/" + t.Arch }

// Targets are the platforms of a release, the default of Options.Targets.
var Targets = []Target{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
}

// ParseTargets reads a comma-separated list such as "linux/amd64,windows/amd64"; only
// the release's own targets are accepted.
func ParseTargets(list string) ([]Target, error) {
	var out []Target
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		i := slices.IndexFunc(Targets, func(t Target) bool { return t.String() == s })
		if i < 0 {
			var known []string
			for _, t := range Targets {
				known = append(known, t.String())
			}
			return nil, fmt.Errorf("unknown target %q (known: %s)", s, strings.Join(known, ", "))
		}
		if !slices.Contains(out, Targets[i]) {
			out = append(out, Targets[i])
		}
	}
	return out, nil
}

// Stamp is what a release build writes into cli.Version, cli.Commit and cli.Date.
type Stamp struct {
	Version string    // e.g. v1.2.3
	Commit  string    // the full commit id
	Date    time.Time // the commit's date: the build date and every archive entry's time
}

// stampWord is what -X may carry: no spaces or quotes that would split -ldflags.
var stampWord = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

func (s Stamp) check() error {
	if !stampWord.MatchString(s.Version) {
		return fmt.Errorf("version %q is not a version (letters, digits, '.', '_', '+', '-')", s.Version)
	}
	if !regexp.MustCompile(`^[0-9a-f]{7,64}$`).MatchString(s.Commit) {
		return fmt.Errorf("commit %q is not a hexadecimal commit id", s.Commit)
	}
	if s.Date.IsZero() || s.Date.Year() < 1980 {
		return fmt.Errorf("date %s is before 1980, which zip cannot record", s.Date.Format(time.RFC3339))
	}
	return nil
}

// ArchiveVersion is the version as it appears in file names: without a leading "v", as
// GoReleaser names its archives.
func (s Stamp) ArchiveVersion() string { return strings.TrimPrefix(s.Version, "v") }

// ArchiveName is the archive of target t.
func (s Stamp) ArchiveName(t Target) string {
	ext := ".tar.gz"
	if t.OS == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("%s_%s_%s_%s%s", Name, s.ArchiveVersion(), t.OS, t.Arch, ext)
}

// ChecksumsName is the checksums file of the release.
func (s Stamp) ChecksumsName() string {
	return fmt.Sprintf("%s_%s_checksums.txt", Name, s.ArchiveVersion())
}

// Options says what to build.
type Options struct {
	Src     string   // the module's root folder
	Out     string   // where the archives and checksums go; created, and must be empty
	Stamp   Stamp    // version, commit and date
	Targets []Target // default: Targets
	Log     io.Writer
}

// Result names the files written, relative to Options.Out.
type Result struct {
	Archives  []string
	Checksums string
}

// Build builds the binaries, packs the archives and writes the checksums file.
func Build(ctx context.Context, o Options) (Result, error) {
	var res Result
	if err := o.Stamp.check(); err != nil {
		return res, err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	targets := o.Targets
	if len(targets) == 0 {
		targets = Targets
	}
	if err := emptyFolder(o.Out); err != nil {
		return res, err
	}
	files, err := extraFiles(o.Src, o.Stamp)
	if err != nil {
		return res, err
	}
	work, err := os.MkdirTemp("", "pctoken-release-")
	if err != nil {
		return res, fmt.Errorf("failed to create a build folder: %w", err)
	}
	defer os.RemoveAll(work)

	// The archives are written only when every target has built, so a failed release
	// leaves no files behind that look like a release.
	archives := map[string][]byte{}
	var sums bytes.Buffer
	for _, t := range targets {
		bin := Name
		if t.OS == "windows" {
			bin += ".exe"
		}
		binPath := filepath.Join(work, t.OS+"_"+t.Arch, bin)
		fmt.Fprintf(o.Log, "building %s\n", t)
		if err := goBuild(ctx, o.Src, t, o.Stamp, binPath); err != nil {
			return res, err
		}
		exe, err := os.ReadFile(binPath)
		if err != nil {
			return res, fmt.Errorf("failed to read the %s binary: %w", t, err)
		}
		entries := append([]entry{{name: bin, mode: 0o755, data: exe}}, files...)
		var archive []byte
		if t.OS == "windows" {
			archive, err = zipArchive(entries, o.Stamp.Date)
		} else {
			archive, err = tarGz(entries, o.Stamp.Date)
		}
		if err != nil {
			return res, fmt.Errorf("failed to pack the %s archive: %w", t, err)
		}
		name := o.Stamp.ArchiveName(t)
		archives[name] = archive
		sum := sha256.Sum256(archive)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
		res.Archives = append(res.Archives, name)
	}
	res.Checksums = o.Stamp.ChecksumsName()
	archives[res.Checksums] = sums.Bytes()
	for _, name := range append(slices.Clone(res.Archives), res.Checksums) {
		if err := os.WriteFile(filepath.Join(o.Out, name), archives[name], 0o644); err != nil {
			return Result{}, fmt.Errorf("failed to write %s: %w", name, err)
		}
	}
	return res, nil
}

// emptyFolder creates dir, or accepts it when it exists and is empty, so a release
// never mixes with the files of an earlier one.
func emptyFolder(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create %s: %w", dir, err)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%s is not empty: remove it, or give another folder", dir)
	}
	return nil
}

// goBuild builds one binary. Everything that changes the output is fixed here rather
// than taken from the caller's environment: cgo off, -trimpath, no VCS stamping (the
// commit is stamped explicitly), no build id, the baseline instruction sets.
func goBuild(ctx context.Context, src string, t Target, s Stamp, out string) error {
	ldflags := strings.Join([]string{
		"-s", "-w", "-buildid=",
		"-X", versionPackage + ".Version=" + s.Version,
		"-X", versionPackage + ".Commit=" + s.Commit,
		"-X", versionPackage + ".Date=" + s.Date.UTC().Format(time.RFC3339),
	}, " ")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-mod=readonly",
		"-ldflags="+ldflags, "-o", out, "./cmd/"+Name)
	cmd.Dir = src
	cmd.Env = append(withoutBuildVariables(os.Environ()),
		"CGO_ENABLED=0", "GOOS="+t.OS, "GOARCH="+t.Arch, "GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=", "GOEXPERIMENT=")
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("failed to build %s: %w\n%s", t, err, msg.String())
	}
	return nil
}

// withoutBuildVariables drops the variables goBuild sets itself.
func withoutBuildVariables(env []string) []string {
	fixed := []string{"CGO_ENABLED", "GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOFLAGS", "GOEXPERIMENT"}
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(fixed, k)
	})
}

// entry is one file of an archive; a name ending in "/" is a folder.
type entry struct {
	name string
	mode os.FileMode
	data []byte
}

// extraFiles are the archive's files besides the binary: README.md, LICENSE when the
// source has one, and the PowerShell module with its manifest's ModuleVersion set to
// the release's version.
func extraFiles(src string, s Stamp) ([]entry, error) {
	var out []entry
	for _, name := range []string{"LICENSE", "README.md"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if errors.Is(err, os.ErrNotExist) && name == "LICENSE" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", name, err)
		}
		out = append(out, entry{name: name, mode: 0o644, data: b})
	}
	dir := filepath.Join(src, filepath.FromSlash(ModuleDir))
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to read the PowerShell module: %w", err)
	}
	base := filepath.Base(dir)
	out = append(out, entry{name: base + "/", mode: 0o755 | os.ModeDir})
	for _, n := range names { // ReadDir sorts by name
		if !n.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n.Name()))
		if err != nil {
			return nil, fmt.Errorf("failed to read the PowerShell module: %w", err)
		}
		if strings.HasSuffix(n.Name(), ".psd1") {
			b = StampManifest(b, s.Version)
		}
		out = append(out, entry{name: base + "/" + n.Name(), mode: 0o644, data: b})
	}
	return out, nil
}

var (
	semver        = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)`)
	moduleVersion = regexp.MustCompile(`(?m)^(\s*ModuleVersion\s*=\s*)'[^'\r\n]*'`)
)

// StampManifest sets a module manifest's ModuleVersion to the numeric part of version
// (PowerShell takes only digits and dots there); a version without one leaves it as it is.
func StampManifest(psd1 []byte, version string) []byte {
	m := semver.FindStringSubmatch(version)
	if m == nil {
		return psd1
	}
	return moduleVersion.ReplaceAll(psd1, []byte("${1}'"+m[1]+"'"))
}

// tarGz packs entries with fixed owners (root, 0/0) and times, in the given order.
func tarGz(entries []entry, date time.Time) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: int64(e.mode.Perm()), Size: int64(len(e.data)),
			ModTime: date.UTC().Truncate(time.Second), Typeflag: tar.TypeReg,
			Uname: "root", Gname: "root", Format: tar.FormatPAX,
		}
		if e.mode.IsDir() {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// zipArchive packs entries, deflated, with fixed times and Unix modes, in the given order.
func zipArchive(entries []entry, date time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: date.UTC().Truncate(time.Second)}
		if e.mode.IsDir() {
			h.Method = zip.Store
		}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
