// Package testkeyring runs a real Secret Service for tests: a private session bus
// without service activation, and gnome-keyring on it, headless, with its login
// collection created and unlocked. Both daemons are children of the test process
// (dbus-daemon --nofork, gnome-keyring-daemon --foreground), so they are stopped by
// pid and reaped even under an init that reaps nothing, and no bus is ever
// autolaunched.
package testkeyring

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus"
)

// Password unlocks the test keyring's login collection; it guards nothing.
const Password = "test-login-password"

// Binaries are the programs Start needs (Debian: dbus gnome-keyring libsecret-tools).
var Binaries = []string{"dbus-daemon", "gnome-keyring-daemon", "secret-tool"}

// MissingError says a program Start needs is not installed.
type MissingError struct{ Binary string }

func (e *MissingError) Error() string {
	return e.Binary + " is not installed (apt-get install dbus gnome-keyring libsecret-tools dbus-x11)"
}

// Daemons is a running Secret Service.
type Daemons struct {
	// Addr is the bus address: set DBUS_SESSION_BUS_ADDRESS to it.
	Addr string
	// Socket is the bus's unix socket.
	Socket string
	// Env is what a process needs to reach this keyring (the bus and a private home).
	Env []string

	dir     string
	bus     *exec.Cmd
	keyring *exec.Cmd
}

// busConfig is a session bus with no service activation, so that nothing but the
// daemons started here can appear on it.
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

// Start starts the daemons; extraEnv is added to theirs (e.g. a marker to find stray
// processes by). A missing program is a *MissingError. Call Stop when done, also
// after an error.
func Start(extraEnv ...string) (*Daemons, error) {
	for _, b := range Binaries {
		if _, err := exec.LookPath(b); err != nil {
			return nil, &MissingError{b}
		}
	}
	// Short: a unix socket path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "pctoken-ss-")
	if err != nil {
		return nil, err
	}
	d := &Daemons{dir: dir, Socket: filepath.Join(dir, "bus")}
	if err := d.start(extraEnv); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func (d *Daemons) start(extraEnv []string) error {
	conf := filepath.Join(d.dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, d.Socket), 0o600); err != nil {
		return err
	}
	d.bus = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	d.bus.Env = append(os.Environ(), extraEnv...)
	stdout, err := d.bus.StdoutPipe()
	if err != nil {
		return err
	}
	if err := d.bus.Start(); err != nil {
		return fmt.Errorf("dbus-daemon: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case d.Addr = <-addr:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("dbus-daemon printed no address within 10s")
	}
	if d.Addr == "" {
		return fmt.Errorf("dbus-daemon printed no address")
	}
	for _, sub := range []string{"home", "run"} {
		if err := os.Mkdir(filepath.Join(d.dir, sub), 0o700); err != nil {
			return err
		}
	}
	d.Env = append([]string{
		"DBUS_SESSION_BUS_ADDRESS=" + d.Addr,
		"HOME=" + filepath.Join(d.dir, "home"),
		"XDG_DATA_HOME=" + filepath.Join(d.dir, "home", "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(d.dir, "home", "config"),
		"XDG_RUNTIME_DIR=" + filepath.Join(d.dir, "run"),
	}, extraEnv...)
	d.keyring = exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	d.keyring.Env = append(os.Environ(), d.Env...)
	d.keyring.Stdin = strings.NewReader(Password)
	if err := d.keyring.Start(); err != nil {
		return fmt.Errorf("gnome-keyring-daemon: %w", err)
	}
	return WaitForLogin(d.Addr)
}

// Stop ends both daemons and removes their folder. It says so when a daemon
// outlived its SIGTERM by five seconds (it is then killed).
func (d *Daemons) Stop() error {
	var err error
	for _, c := range []*exec.Cmd{d.keyring, d.bus} {
		if c == nil || c.Process == nil {
			continue
		}
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			err = fmt.Errorf("%s (pid %d) was still running 5s after SIGTERM", c.Path, c.Process.Pid)
			c.Process.Kill()
			<-done
		}
	}
	os.RemoveAll(d.dir)
	return err
}

// Lookup reads a key of the helper from the keyring with secret-tool, a client
// independent of the helper.
func (d *Daemons) Lookup(key string) (string, error) {
	cmd := exec.Command("secret-tool", "lookup", "service", "pctoken-helper", "key", key)
	cmd.Env = append(os.Environ(), d.Env...)
	out, err := cmd.Output()
	return string(out), err
}

// WaitForLogin waits until the login collection at addr exists and is unlocked.
func WaitForLogin(addr string) error {
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
	conn, err := Conn(addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	v, err := conn.Object("org.freedesktop.secrets", "/org/freedesktop/secrets/collection/login").
		GetProperty("org.freedesktop.Secret.Collection.Locked")
	if err != nil {
		return false, err
	}
	locked, _ := v.Value().(bool)
	return locked, nil
}

// Conn is a private, authenticated connection to the bus at addr.
func Conn(addr string) (*dbus.Conn, error) {
	conn, err := dbus.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := conn.Auth(nil); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
