// Package release tests the release command (go run ./internal/cmd/release) as a
// maintainer runs it, and the PowerShell module it ships: archives named as documented,
// a checksums file sha256sum -c accepts, the same bytes twice, a linux/amd64 binary that
// runs and reports its stamp, and nothing written into the source tree.
package release

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// root is the module's folder (tests run in their package's folder).
func root(t *testing.T) string { return harness.ModuleRoot(t) }

// tool builds the release command into a temporary folder.
func tool(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "release")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/pctoken/pctoken-helper/internal/cmd/release")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the release command: %v\n%s", err, out)
	}
	return bin
}

// runTool runs the release command from a temporary folder and returns its stdout.
func runTool(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("release %s: %s\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// tree lists every file under dir (but .git) with its size and modification time.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = fmt.Sprintf("%v %d %d", info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const (
	stampVersion = "v1.2.3-rc.1"
	stampCommit  = "0123456789abcdef0123456789abcdef01234567"
	stampDate    = "2026-01-02T03:04:05Z"
)

// TestRelease builds two of the six targets (the command's default is all six; the
// cross-compilation of all six is .ci/run's) with a given stamp, twice.
func TestRelease(t *testing.T) {
	src := root(t)
	bin := tool(t)
	before := tree(t, src)

	stamp := []string{"-src", src, "-targets", "linux/amd64,windows/amd64",
		"-version", stampVersion, "-commit", stampCommit, "-date", stampDate}
	out1 := filepath.Join(t.TempDir(), "dist")
	stdout, err := runTool(t, bin, append([]string{"-out", out1}, stamp...)...)
	if err != nil {
		t.Fatal(err)
	}
	archives := []string{
		"pctoken-helper_1.2.3-rc.1_linux_amd64.tar.gz",
		"pctoken-helper_1.2.3-rc.1_windows_amd64.zip",
	}
	checksums := "pctoken-helper_1.2.3-rc.1_checksums.txt"
	names := listDir(t, out1)
	if want := append(slices.Clone(archives), checksums); !slices.Equal(names, sorted(want)) {
		t.Fatalf("release folder holds %q, want %q", names, sorted(want))
	}
	for _, n := range append(slices.Clone(archives), checksums) {
		if !strings.Contains(stdout, filepath.Join(out1, n)+"\n") {
			t.Errorf("stdout does not name %s:\n%s", n, stdout)
		}
	}

	t.Run("checksums", func(t *testing.T) { checkSums(t, out1, checksums, archives) })
	t.Run("linux archive", func(t *testing.T) { checkTarGz(t, src, filepath.Join(out1, archives[0])) })
	t.Run("windows archive", func(t *testing.T) { checkZip(t, src, filepath.Join(out1, archives[1])) })

	t.Run("README install recipe", func(t *testing.T) { readmeRecipe(t, src, out1, archives[0], checksums) })

	t.Run("same bytes again", func(t *testing.T) {
		out2 := filepath.Join(t.TempDir(), "dist")
		if _, err := runTool(t, bin, append([]string{"-out", out2}, stamp...)...); err != nil {
			t.Fatal(err)
		}
		for _, n := range append(slices.Clone(archives), checksums) {
			a, b := readFile(t, filepath.Join(out1, n)), readFile(t, filepath.Join(out2, n))
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs between two builds of the same source and stamp", n)
			}
		}
	})

	t.Run("refuses a folder that is not empty", func(t *testing.T) {
		_, err := runTool(t, bin, append([]string{"-out", out1}, stamp...)...)
		if err == nil || !strings.Contains(err.Error(), "is not empty") {
			t.Fatalf("a second release into the same folder: %v, want 'is not empty'", err)
		}
	})

	t.Run("stamp from git", func(t *testing.T) {
		if _, err := exec.LookPath("git"); err != nil {
			t.Skip("git is not installed")
		}
		if err := exec.Command("git", "-C", src, "rev-parse", "HEAD").Run(); err != nil {
			t.Skipf("the source is not a git checkout: %v", err)
		}
		out := filepath.Join(t.TempDir(), "dist")
		if _, err := runTool(t, bin, "-src", src, "-out", out, "-targets", "linux/amd64"); err != nil {
			t.Fatal(err)
		}
		head := strings.TrimSpace(gitOut(t, src, "rev-parse", "HEAD"))
		line := versionOf(t, filepath.Join(out, findSuffix(t, out, "_linux_amd64.tar.gz")))
		if !strings.Contains(line, "commit "+head[:12]) {
			t.Errorf("version %q does not name HEAD %s", line, head[:12])
		}
		pseudo := regexp.MustCompile(`^pctoken-helper (v\S+|v0\.0\.0-\d{14}-[0-9a-f]{12}(-dirty)?) \(`)
		if !pseudo.MatchString(line) {
			t.Errorf("version %q is neither a tag nor a pseudo-version", line)
		}
	})

	if after := tree(t, src); !mapsEqual(before, after) {
		t.Errorf("the release wrote into the source tree: %s", treeDiff(before, after))
	}
}

// checkSums: every line is "<sha256>  <name>", names the archives, matches their bytes,
// and sha256sum -c (when installed) accepts the file as it is.
func checkSums(t *testing.T, dir, checksums string, archives []string) {
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	var named []string
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join(dir, checksums))))
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("checksums line %q is not '<sha256>  <name>'", sc.Text())
		}
		sum := sha256.Sum256(readFile(t, filepath.Join(dir, m[2])))
		if hex.EncodeToString(sum[:]) != m[1] {
			t.Errorf("checksum of %s is wrong", m[2])
		}
		named = append(named, m[2])
	}
	if !slices.Equal(named, sorted(archives)) {
		t.Errorf("checksums file names %q, want %q", named, sorted(archives))
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Logf("sha256sum is not installed: checked in Go only")
		return
	}
	cmd := exec.Command("sha256sum", "-c", checksums)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
}

// readmeRecipe runs the Linux recipe of README.md's Install section as it is written, in
// a folder holding what a user downloaded (one archive and the checksums file), with a
// fresh home: the check passes, the binary lands on PATH and reports its version.
func readmeRecipe(t *testing.T, src, dist, archive, checksums string) {
	for _, tool := range []string{"bash", "sha256sum", "tar", "install"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	var recipe string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(readFile(t, filepath.Join(src, "README.md"))), -1) {
		if strings.Contains(block[1], "sha256sum -c --ignore-missing") {
			recipe = block[1]
		}
	}
	if recipe == "" {
		t.Fatal("README.md has no sh block with sha256sum -c --ignore-missing")
	}
	downloads, home := t.TempDir(), t.TempDir()
	for _, n := range []string{archive, checksums} {
		if err := os.WriteFile(filepath.Join(downloads, n), readFile(t, filepath.Join(dist, n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", recipe)
	cmd.Dir = downloads
	cmd.Env = []string{"HOME=" + home, "PATH=" + filepath.Join(home, ".local", "bin") + ":" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md's recipe: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), archive+": OK") || !strings.Contains(string(out), "pctoken-helper "+stampVersion+" ") {
		t.Errorf("README.md's recipe printed:\n%s\nwant the archive checked OK and the stamped version", out)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "bin", "pctoken-helper")); err != nil {
		t.Errorf("the recipe did not install the binary: %v", err)
	}
}

// moduleEntries are the archive's entries besides the binary.
var moduleEntries = []string{"README.md", "PCTokenHelper/", "PCTokenHelper/PCTokenHelper.psd1", "PCTokenHelper/PCTokenHelper.psm1"}

func checkTarGz(t *testing.T, src, path string) {
	headers, files := readTarGz(t, path)
	var names []string
	for _, h := range headers {
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.ModTime.UTC().Format(time.RFC3339) != stampDate {
			t.Errorf("%s: owner %d:%d, time %s; want 0:0 and the stamped date", h.Name, h.Uid, h.Gid, h.ModTime.UTC())
		}
		if h.Name == "pctoken-helper" && h.Mode != 0o755 {
			t.Errorf("binary mode %o, want 755", h.Mode)
		}
	}
	checkEntries(t, src, names, files, "pctoken-helper")

	exe := filepath.Join(t.TempDir(), "pctoken-helper")
	if err := os.WriteFile(exe, files["pctoken-helper"], 0o755); err != nil {
		t.Fatal(err)
	}
	line := runVersion(t, exe)
	for _, want := range []string{"pctoken-helper " + stampVersion + " ", "commit " + stampCommit[:12], "built " + stampDate, "linux/amd64"} {
		if !strings.Contains(line, want) {
			t.Errorf("version of the released binary is %q, want it to contain %q", line, want)
		}
	}
	checkStatic(t, exe, src)
}

func checkZip(t *testing.T, src, path string) {
	b := readFile(t, path)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Modified.UTC().Format(time.RFC3339) != stampDate {
			t.Errorf("%s: time %s, want the stamped date", f.Name, f.Modified.UTC())
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	checkEntries(t, src, names, files, "pctoken-helper.exe")
	if !bytes.HasPrefix(files["pctoken-helper.exe"], []byte("MZ")) {
		t.Errorf("pctoken-helper.exe is not a Windows executable")
	}
}

// checkEntries: the binary first, then README.md and the module; README and the module
// as in the source, but for the manifest's ModuleVersion, which is the release's.
func checkEntries(t *testing.T, src string, names []string, files map[string][]byte, bin string) {
	want := append([]string{bin}, moduleEntries...)
	if _, err := os.Stat(filepath.Join(src, "LICENSE")); err == nil {
		want = slices.Insert(want, 1, "LICENSE")
	}
	if !slices.Equal(names, want) {
		t.Fatalf("archive holds %q, want %q", names, want)
	}
	if !bytes.Equal(files["README.md"], readFile(t, filepath.Join(src, "README.md"))) {
		t.Errorf("README.md in the archive differs from the source's")
	}
	if !bytes.Equal(files["PCTokenHelper/PCTokenHelper.psm1"], readFile(t, filepath.Join(src, modulePath))) {
		t.Errorf("the module in the archive differs from %s", modulePath)
	}
	m, err := parsePSD1(files["PCTokenHelper/PCTokenHelper.psd1"])
	if err != nil {
		t.Fatalf("the archive's manifest: %v", err)
	}
	if m["ModuleVersion"] != "1.2.3" {
		t.Errorf("the archive's manifest has ModuleVersion %v, want 1.2.3 (from %s)", m["ModuleVersion"], stampVersion)
	}
}

// checkStatic: CGO_ENABLED=0 gives a binary with no dynamic loader, and -trimpath one
// that does not carry the build machine's source folder.
func checkStatic(t *testing.T, exe, src string) {
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the released binary is dynamically linked (%v)", p.Type)
		}
	}
	if bytes.Contains(readFile(t, exe), []byte(src)) {
		t.Errorf("the released binary contains the source folder %s: -trimpath missing", src)
	}
}

func runVersion(t *testing.T, exe string) string {
	t.Helper()
	cmd := exec.Command(exe, "version")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"HOME=" + cmd.Dir, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s version: %v", exe, err)
	}
	return strings.TrimSpace(string(out))
}

// versionOf runs `version` of the binary in a linux tar.gz.
func versionOf(t *testing.T, archive string) string {
	_, files := readTarGz(t, archive)
	exe := filepath.Join(t.TempDir(), "pctoken-helper")
	if err := os.WriteFile(exe, files["pctoken-helper"], 0o755); err != nil {
		t.Fatal(err)
	}
	return runVersion(t, exe)
}

// readTarGz reads a tar.gz archive: its headers in order, and each file's content.
func readTarGz(t *testing.T, path string) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	var headers []*tar.Header
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return headers, files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		headers = append(headers, h)
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func findSuffix(t *testing.T, dir, suffix string) string {
	t.Helper()
	for _, n := range listDir(t, dir) {
		if strings.HasSuffix(n, suffix) {
			return n
		}
	}
	t.Fatalf("no *%s in %s", suffix, dir)
	return ""
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func treeDiff(before, after map[string]string) string {
	var out []string
	for k, v := range after {
		if w, ok := before[k]; !ok {
			out = append(out, "new "+k)
		} else if w != v {
			out = append(out, "changed "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
