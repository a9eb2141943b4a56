package reliability

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// TestSecretServiceStoreUnderStress runs the helper against a real Secret Service
// (gnome-keyring on a private, headless session bus): consent, 16 concurrent forced
// refreshes, SIGKILLs during refreshes, renew and logout. The refresh token lives in
// the keyring (secret-tool reads it back and the simulator accepts it), never in a
// file, and the daemons are gone when the test ends.
func TestSecretServiceStoreUnderStress(t *testing.T) {
	t.Parallel()
	ss := harness.StartSecretService(t, markerVar+"="+runMarker)
	e := newEnv(t)
	e.Vars["DBUS_SESSION_BUS_ADDRESS"] = ss.Addr
	e.Vars["PCTOKEN_STORE"] = "secret-service"
	delete(e.Vars, "PCTOKEN_FILE_PASSPHRASE")
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	stored := func() string {
		t.Helper()
		rt, err := ss.Lookup("refresh-token:default")
		if err != nil || rt == "" {
			t.Fatalf("secret-tool finds no refresh token in the keyring: %v", err)
		}
		if !e.Sim.RefreshTokenValid(rt) {
			t.Fatalf("the refresh token in the keyring (%d bytes) is not redeemable", len(rt))
		}
		return rt
	}
	first := stored()

	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scope := []string{"graph", "arm"}[i%2]
			res, _ := timedRun(t, e, time.Minute, "", "get", "--scope", scope, "--force-refresh")
			if res.Code != 0 {
				errs <- fmt.Sprintf("exit %d: %s", res.Code, res.Stderr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatalf("a concurrent forced refresh failed: %s", msg)
	}
	if stored() == first {
		t.Fatal("the refresh token in the keyring was not rotated")
	}

	var took []time.Duration
	for range 3 {
		_, d := timedRun(t, e, time.Minute, "", "get", "--scope", "graph", "--force-refresh")
		took = append(took, d)
	}
	slices.Sort(took)
	window := took[1] * 3 / 2
	killed := 0
	for i := range 40 {
		if killAfter(t, e, window*time.Duration(i)/40, "", "get", "--scope", "graph", "--force-refresh") {
			killed++
		}
		stored()
	}
	e.Sim.SetLatency(0)
	e.MustRun("renew")
	stored()
	for _, dir := range []string{storeDir(e), filepath.Join(configDir(e), "store")} {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("a file store was created at %s although the store is the Secret Service", dir)
		}
	}
	rt := stored()
	filepath.WalkDir(e.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(rt)) {
				t.Errorf("%s holds the refresh token", path)
			}
		}
		return nil
	})
	e.MustRun("logout")
	if v, err := ss.Lookup("refresh-token:default"); err == nil && v != "" {
		t.Fatal("logout left the refresh token in the keyring")
	}
	t.Logf("Secret Service: 16 concurrent refreshes, %d of 40 runs killed within %s, token intact", killed, window.Round(time.Millisecond))
}

// TestNoSessionBusIsAutolaunched: with no session bus and dbus-launch installed (the
// trap of 99designs/keyring#103: godbus autolaunches a dbus-daemon that outlives the
// process), no run of the helper, whatever the store asked for, leaves a dbus-daemon
// or anything else behind.
func TestNoSessionBusIsAutolaunched(t *testing.T) {
	t.Parallel()
	harness.NeedBinaries(t, "dbus-launch", "dbus-daemon")
	e := newEnv(t)
	// A marker of its own, so that processes of the tests running alongside are not
	// taken for this one's.
	marker := runMarker + "-nobus"
	e.Vars[markerVar] = marker
	e.Consent()
	e.MustRun("get")
	// No bus address, no runtime dir with a bus socket: exactly where godbus would
	// run dbus-launch. DISPLAY is set, as on a desktop where dbus-launch succeeds.
	e.Vars["DBUS_SESSION_BUS_ADDRESS"] = ""
	e.Vars["DISPLAY"] = ":99"
	e.Vars["XDG_RUNTIME_DIR"] = filepath.Join(e.Dir, "run")
	os.Mkdir(e.Vars["XDG_RUNTIME_DIR"], 0o700)
	runs := 0
	for _, store := range []string{"file", "auto", "secret-service", "kwallet", "pass"} {
		for _, args := range [][]string{{"get"}, {"get", "--force-refresh"}, {"status"}, {"exec-credential", "-s", "partner-center"}, {"get", "--store", store}} {
			e.Vars["PCTOKEN_STORE"] = store
			res, _ := timedRun(t, e, 30*time.Second, "", args...)
			noPanic(t, store, res)
			runs++
		}
	}
	if left := waitNoLeftovers(marker, 2*time.Second); len(left) > 0 {
		t.Fatalf("after %d runs with no session bus, processes are left:\n%s", runs, strings.Join(left, "\n"))
	}
	t.Logf("%d runs with no session bus and dbus-launch installed: nothing left behind", runs)
}
