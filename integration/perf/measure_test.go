package perf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// The tools the process benchmarks need, built once per test process, static like
// the helper: the hello-world baseline and the spawner that measures a child.
var (
	toolsOnce sync.Once
	toolsDir  string
	toolsErr  error
)

func buildTools(tb testing.TB) {
	tb.Helper()
	toolsOnce.Do(func() {
		toolsDir, toolsErr = os.MkdirTemp("", "pctoken-perf-tools-")
		if toolsErr != nil {
			return
		}
		for _, name := range []string{"hello", "spawn"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(toolsDir, name), "./"+filepath.Join("testdata", name))
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				toolsErr = fmt.Errorf("build %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if toolsErr != nil {
		tb.Fatal(toolsErr)
	}
}

// helloBinary is the baseline every process time is compared with.
func helloBinary(tb testing.TB) string {
	buildTools(tb)
	return filepath.Join(toolsDir, "hello")
}

func spawnBinary(tb testing.TB) string {
	buildTools(tb)
	return filepath.Join(toolsDir, "spawn")
}

func cleanupTools() {
	if toolsDir != "" {
		os.RemoveAll(toolsDir)
	}
}

// sample is one finished process: its wall time from fork to exit, its peak RSS and
// what it printed.
type sample struct {
	wall   time.Duration
	maxRSS int64 // bytes
	stdout []byte
}

// measure runs name with args, env and stdin through the spawner, bounded by five
// minutes (a batch on a busy machine takes one), and fails tb unless it exits 0.
func measure(tb testing.TB, name string, args, env []string, stdin []byte) sample {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, spawnBinary(tb), append([]string{name}, args...)...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	cmd.ExtraFiles = []*os.File{w}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Start()
	w.Close()
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		tb.Fatalf("%s %s: %v\nstdout: %.2000s\nstderr: %.2000s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errb.String())
	}
	var s sample
	var wallNS, rssKB int64
	var report bytes.Buffer
	_, _ = report.ReadFrom(r)
	if _, err := fmt.Sscan(report.String(), &wallNS, &rssKB); err != nil {
		tb.Fatalf("spawner report %q: %v", report.String(), err)
	}
	s.wall, s.maxRSS, s.stdout = time.Duration(wallNS), rssKB*1024, out.Bytes()
	return s
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// consented is an environment whose default profile has consented.
func consented(tb testing.TB) *harness.Env {
	tb.Helper()
	e := harness.New(tb)
	e.Consent()
	return e
}
