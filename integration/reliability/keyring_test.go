package reliability

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus"
)

// needBinaries skips the test when a program is missing, except in CI (CI=true),
// which installs them (.ci/run), where it fails.
func needBinaries(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			msg := b + " is not installed (apt-get install dbus gnome-keyring libsecret-tools dbus-x11)"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// secretService is a private session bus with gnome-keyring on it, headless, whose
// login collection is unlocked. Both daemons carry this run's marker and are stopped,
// and checked gone, when the test ends.
type secretService struct {
	addr    string
	env     []string
	bus     *exec.Cmd
	keyring *exec.Cmd
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

func startSecretService(t *testing.T) *secretService {
	t.Helper()
	needBinaries(t, "dbus-daemon", "gnome-keyring-daemon", "secret-tool")
	dir, err := os.MkdirTemp("", "pctoken-rel-ss-") // short: a unix socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		t.Fatal(err)
	}
	ss := &secretService{}
	// --nofork keeps the bus our child, so it is stopped by pid and reaped here, even
	// under an init that reaps nothing.
	ss.bus = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	ss.bus.Env = append(os.Environ(), markerVar+"="+runMarker)
	stdout, err := ss.bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.bus.Start(); err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	t.Cleanup(ss.stop(t))
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case ss.addr = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon printed no address within 10s")
	}
	if ss.addr == "" {
		t.Fatal("dbus-daemon printed no address")
	}
	for _, sub := range []string{"home", "run"} {
		os.Mkdir(filepath.Join(dir, sub), 0o700)
	}
	ss.env = []string{
		"DBUS_SESSION_BUS_ADDRESS=" + ss.addr,
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "home", "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "home", "config"),
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
		markerVar + "=" + runMarker,
	}
	// --foreground keeps the daemon our child, so it is stopped by its pid.
	ss.keyring = exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	ss.keyring.Env = append(os.Environ(), ss.env...)
	ss.keyring.Stdin = strings.NewReader("test-login-password")
	if err := ss.keyring.Start(); err != nil {
		t.Fatalf("gnome-keyring-daemon: %v", err)
	}
	if err := waitForLogin(ss.addr); err != nil {
		t.Fatal(err)
	}
	return ss
}

// stop ends both daemons, our children, and fails the test if either outlives its
// signal by five seconds.
func (ss *secretService) stop(t *testing.T) func() {
	return func() {
		for _, c := range []*exec.Cmd{ss.keyring, ss.bus} {
			if c == nil || c.Process == nil {
				continue
			}
			c.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("%s (pid %d) is still running 5s after SIGTERM", c.Path, c.Process.Pid)
				c.Process.Kill()
				<-done
			}
		}
	}
}

// waitForLogin waits until the login collection exists and is unlocked.
func waitForLogin(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		locked, err := loginLocked(addr)
		if err == nil && !locked {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the login collection is not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func loginLocked(addr string) (bool, error) {
	conn, err := dbus.Dial(addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if err := conn.Auth(nil); err != nil {
		return false, err
	}
	if err := conn.Hello(); err != nil {
		return false, err
	}
	v, err := conn.Object("org.freedesktop.secrets", "/org/freedesktop/secrets/collection/login").
		GetProperty("org.freedesktop.Secret.Collection.Locked")
	if err != nil {
		return false, err
	}
	locked, _ := v.Value().(bool)
	return locked, nil
}

// lookup reads a key of the helper from the keyring with secret-tool.
func (ss *secretService) lookup(key string) (string, error) {
	cmd := exec.Command("secret-tool", "lookup", "service", "pctoken-helper", "key", key)
	cmd.Env = append(os.Environ(), ss.env...)
	out, err := cmd.Output()
	return string(out), err
}

// TestSecretServiceStoreUnderStress runs the helper against a real Secret Service
// (gnome-keyring on a private, headless session bus): consent, 16 concurrent forced
// refreshes, SIGKILLs during refreshes, renew and logout. The refresh token lives in
// the keyring (secret-tool reads it back and the simulator accepts it), never in a
// file, and the daemons are gone when the test ends.
func TestSecretServiceStoreUnderStress(t *testing.T) {
	t.Parallel()
	ss := startSecretService(t)
	e := newEnv(t)
	e.Vars["DBUS_SESSION_BUS_ADDRESS"] = ss.addr
	e.Vars["PCTOKEN_STORE"] = "secret-service"
	delete(e.Vars, "PCTOKEN_FILE_PASSPHRASE")
	e.Consent()
	e.MustRun("get", "--scope", "graph")
	stored := func() string {
		t.Helper()
		rt, err := ss.lookup("refresh-token:default")
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
	if v, err := ss.lookup("refresh-token:default"); err == nil && v != "" {
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
	needBinaries(t, "dbus-launch", "dbus-daemon")
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
		for _, args := range [][]string{{"get"}, {"get", "--force-refresh"}, {"status"}, {"exec-credential"}, {"get", "--store", store}} {
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
