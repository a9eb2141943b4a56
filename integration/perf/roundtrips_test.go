package perf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// requests is what one run of the helper cost at the identity provider.
type requests struct{ token, metadata, other int }

// counted runs the helper with args and returns the requests it made.
func counted(tb testing.TB, e *harness.Env, args ...string) requests {
	tb.Helper()
	e.Sim.ResetStats()
	e.MustRun(args...)
	st := e.Sim.Stats()
	r := requests{token: st.Requests["token"], metadata: st.Requests["openid-configuration"] + st.Requests["discovery"]}
	for k, n := range st.Requests {
		if k != "token" && k != "openid-configuration" && k != "discovery" {
			r.other += n
		}
	}
	return r
}

// TestRoundTrips is bar 2: in steady state a refresh makes exactly one request to the
// identity provider, the token POST; the first run of a profile at most two.
func TestRoundTrips(t *testing.T) {
	e := consented(t)
	cacheHome := filepath.Join(e.Vars["XDG_CACHE_HOME"], "pctoken-helper")

	// The first get of the profile after consent: the token request, and at most the
	// home tenant's openid-configuration (consent fetched that of "organizations").
	if r := counted(t, e, "get", "--scope", "graph"); r.token != 1 || r.token+r.metadata+r.other > 2 {
		t.Errorf("first get after consent: %+v, want one token request and at most one more", r)
	} else {
		t.Logf("first get after consent: %+v", r)
	}
	// Steady state: a refresh in a new process, the document on disk.
	for range 3 {
		if r := counted(t, e, "get", "--scope", "graph", "--force-refresh"); r != (requests{token: 1}) {
			t.Errorf("refresh: %+v, want one token request and nothing else", r)
		}
	}
	// A customer tenant the process has never asked for: its own openid-configuration?
	if r := counted(t, e, "get", "--scope", "graph", "--tenant", entrasim.CustomerTenantID); r.token != 1 || r.token+r.metadata+r.other > 2 {
		t.Errorf("first get in a customer tenant: %+v, want one token request and at most one more", r)
	} else {
		t.Logf("first get in a customer tenant: %+v", r)
	}
	if r := counted(t, e, "get", "--scope", "graph", "--tenant", entrasim.CustomerTenantID, "--force-refresh"); r != (requests{token: 1}) {
		t.Errorf("refresh in a customer tenant: %+v, want one token request", r)
	}
	// The first run of a profile on a machine that has kept nothing: the cache folder
	// (and with it the kept documents) gone.
	if err := os.RemoveAll(cacheHome); err != nil {
		t.Fatal(err)
	}
	if r := counted(t, e, "get", "--scope", "graph"); r.token != 1 || r.token+r.metadata+r.other > 2 {
		t.Errorf("first get with nothing kept: %+v, want at most two requests", r)
	} else {
		t.Logf("first get with nothing kept: %+v", r)
	}
	if r := counted(t, e, "get", "--scope", "graph", "--force-refresh"); r != (requests{token: 1}) {
		t.Errorf("refresh after that: %+v, want one token request", r)
	}
	// A cache hit: none.
	if r := counted(t, e, "get", "--scope", "graph"); r != (requests{}) {
		t.Errorf("cache hit: %+v, want no request", r)
	}
}

// BenchmarkRefreshRoundTrips reports the requests of a refresh in a new process (one
// op: get --force-refresh) and its wall time against the simulator on loopback.
func BenchmarkRefreshRoundTrips(b *testing.B) {
	e := consented(b)
	e.MustRun("get", "--scope", "graph")
	var sum requests
	e.Sim.ResetStats()
	for b.Loop() {
		e.MustRun("get", "--scope", "graph", "--force-refresh")
	}
	st := e.Sim.Stats()
	sum = requests{token: st.Requests["token"], metadata: st.Requests["openid-configuration"] + st.Requests["discovery"]}
	b.ReportMetric(float64(sum.token)/float64(b.N), "token-requests/op")
	b.ReportMetric(float64(sum.metadata)/float64(b.N), "metadata-requests/op")
}
