package core

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus"
)

// secretService is a private session bus with gnome-keyring's Secret Service on it,
// started for one test and stopped by pid when it ends.
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
	var busPID int
	var keyring *exec.Cmd
	t.Cleanup(func() {
		if keyring != nil && keyring.Process != nil {
			keyring.Process.Kill()
			keyring.Wait()
		}
		if busPID > 0 {
			syscall.Kill(busPID, syscall.SIGTERM)
		}
		os.RemoveAll(dir)
	})
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dbus-daemon", "--config-file="+conf, "--fork", "--print-address=1", "--print-pid=1").Output()
	if err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 {
		t.Fatalf("dbus-daemon printed %q", out)
	}
	ss.addr = fields[0]
	if busPID, err = strconv.Atoi(fields[1]); err != nil {
		t.Fatal(err)
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
