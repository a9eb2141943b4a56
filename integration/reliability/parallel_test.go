package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// parallelCallers is how many helper processes ask for the same token at once: kubectl
// and git run one per command, CI fans out further.
const parallelCallers = 64

// TestParallelCallersRefreshOnce: 64 `get` processes need the same expired token at
// once. Exactly one token request reaches the identity provider; every caller gets the
// same valid token; the rest wait for the one refresh rather than making their own.
func TestParallelCallersRefreshOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	// A cached token valid for 2 more minutes is stale for the default 5m min-validity.
	e.Sim.SetTokenLifetime(2 * time.Minute)
	stale := decodeToken(t, e.MustRun("get", "--scope", "graph").Stdout)
	e.Sim.SetTokenLifetime(0)
	// The refresh takes a while, so that most callers arrive while it is in flight.
	e.Sim.SetLatency(400 * time.Millisecond)
	e.Sim.ResetStats()

	type run struct {
		start, end time.Time
		out, err   bytes.Buffer
		code       int
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runs := make([]*run, parallelCallers)
	var wg sync.WaitGroup
	for i := range runs {
		r := &run{}
		runs[i] = r
		cmd := e.Command(ctx, "get", "--scope", "graph")
		cmd.Stdout, cmd.Stderr = &r.out, &r.err
		r.start = time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			r.end = time.Now()
			if err != nil {
				r.code = cmd.ProcessState.ExitCode()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("the parallel gets did not finish within a minute")
	}

	var fresh *run
	tokens := map[string]int{}
	for i, r := range runs {
		if r.code != 0 {
			t.Fatalf("caller %d: exit %d\n%s", i, r.code, r.err.String())
		}
		tok := decodeToken(t, r.out.String())
		tokens[tok.AccessToken]++
		if !tok.Cached {
			if fresh != nil {
				t.Fatalf("two callers refreshed: callers %d and another got cached=false", i)
			}
			fresh = r
		}
	}
	st := e.Sim.Stats()
	if st.Requests["token"] != 1 || st.Grants["refresh_token"] != 1 {
		t.Fatalf("%d callers made %d token requests (grants %v), want exactly 1", parallelCallers, st.Requests["token"], st.Grants)
	}
	if len(tokens) != 1 || fresh == nil {
		t.Fatalf("callers got %d different tokens (refresher found: %v), want one", len(tokens), fresh != nil)
	}
	for tok := range tokens {
		if tok == stale.AccessToken {
			t.Fatal("callers got the stale token")
		}
		if _, err := e.Sim.ValidateAccessToken(tok); err != nil {
			t.Fatalf("the token the callers got is not valid: %v", err)
		}
	}
	// The proof that they overlapped: callers that started before the refresh ended
	// waited for it instead of refreshing too.
	waited := 0
	for _, r := range runs {
		if r != fresh && r.start.Before(fresh.end) {
			waited++
		}
	}
	if waited < parallelCallers/2 {
		t.Fatalf("only %d callers started while the refresh was in flight; the test proves nothing", waited)
	}
	t.Logf("%d callers, 1 token request, %d of them started while it was in flight", parallelCallers, waited)
	checkFiles(t, e)
}

// TestFreshReadersNotBlockedByRefresh: while one process holds a key's lock for a slow
// refresh (--force-refresh against a slow identity provider), readers whose cached
// token is fresh, for that key and for another, answer at once from the cache.
func TestFreshReadersNotBlockedByRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	graph := decodeToken(t, e.MustRun("get", "--scope", "graph").Stdout)
	arm := decodeToken(t, e.MustRun("get", "--scope", "arm").Stdout)

	const latency = 6 * time.Second
	e.Sim.SetLatency(latency)
	e.Sim.ResetStats()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var refOut, refErr bytes.Buffer
	refresher := e.Command(ctx, "get", "--scope", "graph", "--force-refresh")
	refresher.Stdout, refresher.Stderr = &refOut, &refErr
	if err := refresher.Start(); err != nil {
		t.Fatal(err)
	}
	refreshStart := time.Now()
	waitFor(t, 20*time.Second, "the refresh to reach the identity provider", func() bool {
		return e.Sim.Stats().Requests["token"] >= 1
	})

	var mu sync.Mutex
	var slowest time.Duration
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		scope, want := "graph", graph.AccessToken
		if i%2 == 1 {
			scope, want = "arm", arm.AccessToken
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, took := timedRun(t, e, 30*time.Second, "", "get", "--scope", scope)
			if res.Code != 0 {
				t.Errorf("reader of %s: exit %d: %s", scope, res.Code, res.Stderr)
				return
			}
			var tok jsonToken
			if err := json.Unmarshal([]byte(res.Stdout), &tok); err != nil || !tok.Cached || tok.AccessToken != want {
				t.Errorf("reader of %s did not get its cached token: %s", scope, res.Stdout)
			}
			mu.Lock()
			slowest = max(slowest, took)
			mu.Unlock()
		}()
	}
	wg.Wait()
	readersDone := time.Since(refreshStart)
	if err := refresher.Wait(); err != nil {
		t.Fatalf("refresher: %v\n%s", err, refErr.String())
	}
	if readersDone >= latency {
		t.Fatalf("the readers finished %s after the refresh started, not before it ended (%s): they waited for it", readersDone, latency)
	}
	if slowest > latency/3 {
		t.Fatalf("the slowest reader took %s while a refresh of %s was in flight", slowest, latency)
	}
	if st := e.Sim.Stats(); st.Requests["token"] != 1 {
		t.Fatalf("readers made token requests: %d in all", st.Requests["token"])
	}
	if tok := decodeToken(t, refOut.String()); tok.Cached || tok.AccessToken == graph.AccessToken {
		t.Fatalf("the forced refresh returned the old token: %+v", tok)
	}
	t.Logf("16 readers during a %s refresh: slowest %s", latency, slowest.Round(time.Millisecond))
}
