package perf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkHitAgainst compares the cache hit of this build with that of another
// binary (PCTOKEN_PERF_OTHER_BIN, e.g. one built from an earlier commit), interleaved
// on the same profile and cache files, so that a change to the hit path is measured
// as a ratio the machine's load hardly moves. Skipped without the variable.
//
// Both binaries are first copied the same way into a fresh folder: measured here, the
// very same bytes ran 16-21% slower from the file the Go linker wrote than from a
// copy made with cp (the page cache holds the two differently), which would swamp
// the few percent a change to the hit path costs. Which one runs first alternates.
//
//	git archive <commit> | tar -x -C /tmp/old && (cd /tmp/old && CGO_ENABLED=0 go build -o /tmp/old-bin ./cmd/pctoken-helper)
//	PCTOKEN_PERF_OTHER_BIN=/tmp/old-bin go test -run '^$' -bench HitAgainst -benchtime 1000x ./integration/perf/
func BenchmarkHitAgainst(b *testing.B) {
	other := os.Getenv("PCTOKEN_PERF_OTHER_BIN")
	if other == "" {
		b.Skip("set PCTOKEN_PERF_OTHER_BIN to the binary to compare with")
	}
	e := consented(b)
	want := strings.TrimSpace(e.MustRun(hitArgs...).Stdout)
	env := e.Environ()
	dir := b.TempDir()
	thisBin, otherBin := copyBinary(b, e.Bin, filepath.Join(dir, "this")), copyBinary(b, other, filepath.Join(dir, "other"))
	var this, that series
	check := func(x sample) sample {
		if got := strings.TrimSpace(string(x.stdout)); got != want {
			b.Fatalf("not the cached token: %q", got)
		}
		return x
	}
	first := true
	for b.Loop() {
		if first {
			this.add(check(measure(b, thisBin, hitArgs, env, nil)))
		}
		that.add(check(measure(b, otherBin, hitArgs, env, nil)))
		if !first {
			this.add(check(measure(b, thisBin, hitArgs, env, nil)))
		}
		first = !first
	}
	mt, mo := median(this.walls), median(that.walls)
	b.ReportMetric(ms(mt), "this-ms")
	b.ReportMetric(ms(mo), "other-ms")
	b.ReportMetric(float64(mt)/float64(mo), "ratio-median")
	b.ReportMetric(mb(this.rss), "this-peak-MB")
	b.ReportMetric(mb(that.rss), "other-peak-MB")
}

// copyBinary copies the executable src to dst in one write.
func copyBinary(b *testing.B, src, dst string) string {
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o700); err != nil {
		b.Fatal(err)
	}
	return dst
}
