package perf

import (
	"strings"
	"testing"
	"time"
)

// hitArgs is the cache hit kubectl and scripts cause: the default profile's token,
// printed bare.
var hitArgs = []string{"get", "--scope", "graph", "--output", "token"}

// fullPathArgs is the same hit taken by the full path (kong, every package
// initialised): --parallel changes nothing without --request, but the early cache-hit
// path leaves any command line with it to the full path.
var fullPathArgs = append(append([]string(nil), hitArgs...), "--parallel", "16")

// execArgs and execInfo are the same hit as kubectl asks for it.
var execArgs = []string{"exec-credential", "--scope", "graph"}

const execInfo = `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`

// series is the wall times and the largest peak RSS of one command, run many times.
type series struct {
	walls []time.Duration
	rss   int64
}

func (s *series) add(x sample) {
	s.walls = append(s.walls, x.wall)
	s.rss = max(s.rss, x.maxRSS)
}

// BenchmarkCacheHit is bar 1: get --output token answered from the cache, as a whole
// process, against a static Go hello-world, interleaved (hello, helper, full path,
// exec-credential, hello, ...) so that all see the same load. Bar: ratio-median (helper
// median / hello median) at most 2, helper-peak-MB at most 15. full-ratio-median is the
// same hit through kong and the full chain, as every hit was before the early path;
// exec-ratio-median is kubectl's exec-credential for the same token. One op is one run
// of each.
func BenchmarkCacheHit(b *testing.B) {
	e := consented(b)
	want := strings.TrimSpace(e.MustRun(hitArgs...).Stdout)
	env := e.Environ()
	hw := helloBinary(b)
	execEnv := append(append([]string(nil), env...), "KUBERNETES_EXEC_INFO="+execInfo)
	var hello, helper, full, exec series
	check := func(x sample) sample {
		if got := strings.TrimSpace(string(x.stdout)); got != want {
			b.Fatalf("not the cached token: %q", got)
		}
		return x
	}
	for b.Loop() {
		hello.add(measure(b, hw, nil, env, nil))
		helper.add(check(measure(b, e.Bin, hitArgs, env, nil)))
		full.add(check(measure(b, e.Bin, fullPathArgs, env, nil)))
		x := measure(b, e.Bin, execArgs, execEnv, nil)
		if !strings.Contains(string(x.stdout), want) {
			b.Fatalf("exec-credential did not answer the cached token: %q", x.stdout)
		}
		exec.add(x)
	}
	mh, mp, mf := median(hello.walls), median(helper.walls), median(full.walls)
	b.ReportMetric(ms(mh), "hello-ms")
	b.ReportMetric(ms(mp), "helper-ms")
	b.ReportMetric(float64(mp)/float64(mh), "ratio-median")
	b.ReportMetric(float64(mf)/float64(mh), "full-ratio-median")
	b.ReportMetric(float64(median(exec.walls))/float64(mh), "exec-ratio-median")
	b.ReportMetric(mb(hello.rss), "hello-peak-MB")
	b.ReportMetric(mb(helper.rss), "helper-peak-MB")
	b.ReportMetric(mb(full.rss), "full-peak-MB")
	b.ReportMetric(mb(exec.rss), "exec-peak-MB")
}

// TestCacheHitPeakRSS is the memory half of bar 1, which does not depend on the
// machine's load: a cache hit's peak RSS is at most 15 MB, by either path.
func TestCacheHitPeakRSS(t *testing.T) {
	const limit = 15 << 20
	e := consented(t)
	e.MustRun(hitArgs...)
	env := e.Environ()
	for _, args := range [][]string{hitArgs, fullPathArgs} {
		var s series
		for range 10 {
			s.add(measure(t, e.Bin, args, env, nil))
		}
		t.Logf("%v: peak RSS %.1f MB", args, mb(s.rss))
		if s.rss > limit {
			t.Errorf("%v: peak RSS %.1f MB, over 15 MB", args, mb(s.rss))
		}
	}
}
