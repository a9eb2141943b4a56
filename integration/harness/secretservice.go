package harness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus"
)

// NeedBinaries skips the test when a program is missing, except in CI (CI=true),
// which installs them (.ci/run), where it fails.
func NeedBinaries(t testing.TB, bins ...string) {
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

// SecretService is a private session bus with gnome-keyring on it, headless, whose
// login collection is unlocked. Both daemons are children of the test process, so
// they are stopped by pid, reaped, and checked gone when the test ends.
type SecretService struct {
	// Addr is the bus address: set DBUS_SESSION_BUS_ADDRESS to it.
	Addr string
	// Env is what a process needs to reach this keyring (the bus and a private home).
	Env     []string
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

// StartSecretService starts the daemons for one test; extraEnv is added to theirs
// (e.g. a marker to find stray processes by). Without the binaries the test is
// skipped, except in CI, which installs them.
func StartSecretService(t testing.TB, extraEnv ...string) *SecretService {
	t.Helper()
	NeedBinaries(t, "dbus-daemon", "gnome-keyring-daemon", "secret-tool")
	dir, err := os.MkdirTemp("", "pctoken-rel-ss-") // short: a unix socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		t.Fatal(err)
	}
	ss := &SecretService{}
	// --nofork keeps the bus our child, so it is stopped by pid and reaped here, even
	// under an init that reaps nothing.
	ss.bus = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	ss.bus.Env = append(os.Environ(), extraEnv...)
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
	case ss.Addr = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon printed no address within 10s")
	}
	if ss.Addr == "" {
		t.Fatal("dbus-daemon printed no address")
	}
	for _, sub := range []string{"home", "run"} {
		os.Mkdir(filepath.Join(dir, sub), 0o700)
	}
	ss.Env = []string{
		"DBUS_SESSION_BUS_ADDRESS=" + ss.Addr,
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "home", "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "home", "config"),
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
	}
	ss.Env = append(ss.Env, extraEnv...)
	// --foreground keeps the daemon our child, so it is stopped by its pid.
	ss.keyring = exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	ss.keyring.Env = append(os.Environ(), ss.Env...)
	ss.keyring.Stdin = strings.NewReader("test-login-password")
	if err := ss.keyring.Start(); err != nil {
		t.Fatalf("gnome-keyring-daemon: %v", err)
	}
	if err := waitForLogin(ss.Addr); err != nil {
		t.Fatal(err)
	}
	return ss
}

// stop ends both daemons, our children, and fails the test if either outlives its
// signal by five seconds.
func (ss *SecretService) stop(t testing.TB) func() {
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

// Lookup reads a key of the helper from the keyring with secret-tool.
func (ss *SecretService) Lookup(key string) (string, error) {
	cmd := exec.Command("secret-tool", "lookup", "service", "pctoken-helper", "key", key)
	cmd.Env = append(os.Environ(), ss.Env...)
	out, err := cmd.Output()
	return string(out), err
}
