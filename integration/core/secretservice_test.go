package core

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

// secretService is a private session bus with gnome-keyring's Secret Service on it,
// started for one test and stopped when it ends.
type secretService struct {
	addr string
	dir  string
}

// busConfig is a session bus without service activation, so nothing but the daemons
// started here appears on it (the securestore tests use the same).
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

// startSecretService starts dbus-daemon and gnome-keyring-daemon (login collection
// created and unlocked). Without the binaries the test is skipped, except in CI.
func startSecretService(t *testing.T) *secretService {
	t.Helper()
	for _, bin := range []string{"dbus-daemon", "gnome-keyring-daemon", "secret-tool"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := bin + " is not installed (apt-get install dbus gnome-keyring libsecret-tools dbus-x11)"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	// A short folder: a unix socket path has a limit of about 100 bytes.
	dir, err := os.MkdirTemp("", "pctoken-ss-")
	if err != nil {
		t.Fatal(err)
	}
	ss := &secretService{dir: dir}
	var bus, keyring *exec.Cmd
	t.Cleanup(func() {
		// Both daemons are children of this process, stopped by pid and reaped, so
		// neither outlives the test nor lingers as a zombie (with --fork the bus
		// would be re-parented to an init that may never reap it).
		for _, c := range []*exec.Cmd{keyring, bus} {
			if c != nil && c.Process != nil {
				c.Process.Signal(syscall.SIGTERM)
				done := make(chan struct{})
				go func() { c.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					c.Process.Kill()
					<-done
				}
			}
		}
		os.RemoveAll(dir)
	})
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		t.Fatal(err)
	}
	bus = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	addrc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addrc <- strings.TrimSpace(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case ss.addr = <-addrc:
	case <-time.After(15 * time.Second):
		t.Fatal("dbus-daemon printed no address")
	}
	if ss.addr == "" {
		t.Fatal("dbus-daemon printed no address")
	}
	home := filepath.Join(dir, "home")
	run := filepath.Join(dir, "run")
	for _, d := range []string{home, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// --foreground keeps the daemon our child, so it is stopped by its pid; the
	// password on stdin creates and unlocks the login collection.
	keyring = exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	keyring.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"DBUS_SESSION_BUS_ADDRESS=" + ss.addr,
		"HOME=" + home,
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_RUNTIME_DIR=" + run,
	}
	keyring.Stdin = strings.NewReader("integration-keyring-password")
	if err := keyring.Start(); err != nil {
		t.Fatalf("gnome-keyring-daemon: %v", err)
	}
	if err := waitForLogin(ss.addr); err != nil {
		t.Fatal(err)
	}
	return ss
}

// waitForLogin waits until the login collection exists and is unlocked.
func waitForLogin(addr string) error {
	conn, err := dbus.Dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Auth(nil); err != nil {
		return err
	}
	if err := conn.Hello(); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err := conn.Object("org.freedesktop.secrets", "/org/freedesktop/secrets/collection/login").
			GetProperty("org.freedesktop.Secret.Collection.Locked")
		if err == nil && v.Value() == false {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the login collection is not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lookup reads the helper's item for key with secret-tool, a client independent of
// the helper; "" when there is none.
func (ss *secretService) lookup(t *testing.T, key string) string {
	t.Helper()
	cmd := exec.Command("secret-tool", "lookup", "service", "pctoken-helper", "key", key)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DBUS_SESSION_BUS_ADDRESS=" + ss.addr}
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && len(out) == 0 {
			return ""
		}
		t.Fatalf("secret-tool lookup %s: %v", key, err)
	}
	return string(out)
}
