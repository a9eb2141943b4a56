package perf

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/cli"
)

// BenchmarkCLIRunVersion is what the full path costs before any command runs: kong
// building its model of the whole command line by reflection, parsing and dispatching,
// in a warm process (a fresh one pays more: page faults and cold caches). It is the
// cost the early cache-hit path avoids.
func BenchmarkCLIRunVersion(b *testing.B) {
	env := cli.OS()
	env.Stdin, env.Stdout, env.Stderr = strings.NewReader(""), io.Discard, io.Discard
	b.ReportAllocs()
	for b.Loop() {
		if code := cli.Run(context.Background(), []string{"version"}, env); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
