package perf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

const batchLatency = 50 * time.Millisecond

// batchTenant is the i-th customer tenant of the batch benchmarks.
func batchTenant(i int) string { return fmt.Sprintf("0f1e2d3c-0000-4000-a000-%012x", i) }

// addTenants gives the simulated user access to n customer tenants.
func addTenants(e *harness.Env, n int) {
	for i := range n {
		e.Sim.AddTenant(batchTenant(i), fmt.Sprintf("customer%d.onmicrosoft.com", i))
	}
}

// requestLines is n --request lines over tenants (i mod tenants), each forcing a
// redemption, so that every line costs a token request whatever ran before.
func requestLines(n, tenants int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"id":%d,"tenant":%q,"scopes":["graph"],"force_refresh":true}`+"\n", i, batchTenant(i%tenants))
	}
	return b.Bytes()
}

// checkAnswers fails unless out holds one token answer per request id 0..n-1.
func checkAnswers(tb testing.TB, out []byte, n int) {
	tb.Helper()
	seen := make([]bool, n)
	count := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var a struct {
			ID          int             `json:"id"`
			AccessToken string          `json:"access_token"`
			Error       json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil || a.AccessToken == "" || a.ID < 0 || a.ID >= n || seen[a.ID] {
			tb.Fatalf("answer %d: %s", count, sc.Text())
		}
		seen[a.ID] = true
		count++
	}
	if count != n {
		tb.Fatalf("%d answers to %d requests", count, n)
	}
}

// BenchmarkBatch is bar 5: 1,000 requests over 1,000 tenants through get --request,
// the simulator answering each token request after 50 ms, against 1,000 sequential get
// processes. The sequential side is a sample of 50 processes (each a redemption in a
// tenant of its own, as in the batch) whose mean is multiplied by 1,000: running all
// 1,000 would take minutes and say nothing more. speedup = sequential / batch; the bar
// is 10. One op is one batch and one sample.
func BenchmarkBatch(b *testing.B) {
	const n, sample = 1000, 50
	e := consented(b)
	addTenants(e, n)
	env := e.Environ()
	lines := requestLines(n, n)
	// Every tenant's openid-configuration kept once, as in steady state.
	run := measure(b, e.Bin, []string{"get", "--request", "-"}, env, lines)
	checkAnswers(b, run.stdout, n)
	e.Sim.SetLatency(batchLatency)
	defer e.Sim.SetLatency(0)
	var batches, seqs []time.Duration
	var rss int64
	for b.Loop() {
		e.Sim.ResetStats()
		x := measure(b, e.Bin, []string{"get", "--request", "-"}, env, lines)
		checkAnswers(b, x.stdout, n)
		if got := e.Sim.Stats().Requests["token"]; got != n {
			b.Fatalf("%d token requests for %d lines", got, n)
		}
		batches = append(batches, x.wall)
		rss = max(rss, x.maxRSS)
		var total time.Duration
		for i := range sample {
			s := measure(b, e.Bin, []string{"get", "--scope", "graph", "--tenant", batchTenant(i * (n / sample)), "--force-refresh", "-o", "token"}, env, nil)
			total += s.wall
		}
		seqs = append(seqs, total*time.Duration(n/sample))
	}
	batch, seq := median(batches), median(seqs)
	b.ReportMetric(batch.Seconds(), "batch-s")
	b.ReportMetric(seq.Seconds(), "sequential-s")
	b.ReportMetric(float64(seq)/float64(batch), "speedup")
	b.ReportMetric(mb(rss), "batch-peak-MB")
}

// TestBatchHonoursRetryAfter is bar 5's other half: a batch throttled with 429 and
// Retry-After: 1 waits that second and then gets every token, with one more token
// request per throttled answer and no other retries.
func TestBatchHonoursRetryAfter(t *testing.T) {
	const n, throttled = 40, 5
	e := consented(t)
	addTenants(e, n)
	lines := requestLines(n, n)
	e.MustRun("get", "--scope", "graph") // the home tenant's documents kept
	e.Sim.ResetStats()
	e.Sim.ThrottleNext(throttled, time.Second)
	start := time.Now()
	res := e.RunStdin(string(lines), "get", "--request", "-")
	took := time.Since(start)
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s", res.Code, res.Stderr)
	}
	checkAnswers(t, []byte(res.Stdout), n)
	if got := e.Sim.Stats().Requests["token"]; got != n+throttled {
		t.Errorf("%d token requests, want %d (one retry per 429)", got, n+throttled)
	}
	if took < time.Second {
		t.Errorf("the batch took %v: Retry-After: 1 was not waited for", took)
	}
	t.Logf("batch of %d with %d answers 429 Retry-After 1s: %v", n, throttled, took)
}

// BenchmarkBatchMemory is bar 6: the peak RSS of a batch does not grow with the number
// of requests (answers are written as they come, requests read as they are taken).
// Batches of 100, 1,000 and 2,000 requests over 1,000 tenants, no latency; growth is
// the extra peak RSS per 1,000 requests from 100 to 2,000. One op is one batch of each.
func BenchmarkBatchMemory(b *testing.B) {
	e := consented(b)
	addTenants(e, 1000)
	env := e.Environ()
	measure(b, e.Bin, []string{"get", "--request", "-"}, env, requestLines(1000, 1000)) // documents kept
	sizes := []int{100, 1000, 2000}
	peaks := make([]int64, len(sizes))
	for b.Loop() {
		for i, n := range sizes {
			x := measure(b, e.Bin, []string{"get", "--request", "-"}, env, requestLines(n, 1000))
			checkAnswers(b, x.stdout, n)
			peaks[i] = max(peaks[i], x.maxRSS)
		}
	}
	for i, n := range sizes {
		b.ReportMetric(mb(peaks[i]), fmt.Sprintf("peak-MB-%d", n))
	}
	b.ReportMetric(mb(peaks[2]-peaks[0])/1.9, "growth-MB-per-1000")
}
