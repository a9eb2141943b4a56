package securestore

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus"
	libsecret "github.com/gsterjov/go-libsecret"
	"github.com/pctoken/pctoken-helper/internal/testkeyring"
)

// secretServiceDaemons is a real Secret Service shared by the tests that need it
// and stopped by TestMain.
var secretServiceDaemons struct {
	once sync.Once
	err  error
	d    *testkeyring.Daemons
}

// secretServiceBus starts the daemons if need be and points this process's
// DBUS_SESSION_BUS_ADDRESS at their bus for the test. Without the binaries
// the test is skipped, except in CI, which installs them.
func secretServiceBus(t testing.TB) string {
	t.Helper()
	ss := &secretServiceDaemons
	ss.once.Do(func() { ss.d, ss.err = testkeyring.Start() })
	var missing *testkeyring.MissingError
	if errors.As(ss.err, &missing) {
		if os.Getenv("CI") == "true" {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}
	if ss.err != nil {
		t.Fatalf("starting the Secret Service: %v", ss.err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", ss.d.Addr)
	return ss.d.Addr
}

func stopSecretService() {
	if d := secretServiceDaemons.d; d != nil {
		if err := d.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

func ssChild(op, key, value string) child {
	return child{op: op, env: map[string]string{"CHILD_BACKEND": "secret-service", "CHILD_KEY": key, "CHILD_VALUE": value}}
}

func secretTool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("secret-tool", args...).Output()
	return string(out), err
}

func TestSecretServiceAcrossProcesses(t *testing.T) {
	secretServiceBus(t)
	const key, value = "refresh:contoso", "0.AXYA-secret-service-token"

	if rep := ssChild("set", key, value).run(t); rep.Error != "" || rep.Backend != "secret-service" {
		t.Fatalf("set: %+v", rep)
	}
	if rep := ssChild("get", key, "").run(t); rep.Error != "" || rep.Value != value {
		t.Fatalf("get in another process: %+v", rep)
	}
	// The item is where the package doc says, with the attributes chosen.
	out, err := secretTool(t, "lookup", "service", "pctoken-helper", "key", key)
	if err != nil || out != value {
		t.Fatalf("secret-tool lookup = %q, %v", out, err)
	}
	out, err = secretTool(t, "search", "--all", "service", "pctoken-helper", "key", key)
	if err != nil || !strings.Contains(out, "label = pctoken-helper: "+key) {
		t.Fatalf("secret-tool search: %q, %v", out, err)
	}
	if paths := searchAll(t, map[string]string{"service": "pctoken-helper", "key": key}); len(paths) != 1 ||
		!strings.HasPrefix(string(paths[0]), libsecret.DBusPath+"/collection/login/") {
		t.Fatalf("items %v, want one in the login collection", paths)
	}

	if rep := ssChild("set", key, "rotated").run(t); rep.Error != "" {
		t.Fatalf("replace: %+v", rep)
	}
	if rep := ssChild("get", key, "").run(t); rep.Value != "rotated" {
		t.Fatalf("after replace: %+v", rep)
	}
	out, _ = secretTool(t, "search", "--all", "service", "pctoken-helper", "key", key)
	if n := strings.Count(out, "label = "); n != 1 {
		t.Fatalf("%d items after replacing, want 1:\n%s", n, out)
	}

	if rep := ssChild("remove", key, "").run(t); rep.Error != "" {
		t.Fatalf("remove: %+v", rep)
	}
	if rep := ssChild("get", key, "").run(t); !rep.is("ErrNotFound") {
		t.Fatalf("get after remove: %+v", rep)
	}
	if rep := ssChild("remove", key, "").run(t); rep.Error != "" {
		t.Fatalf("removing a missing key: %+v", rep)
	}
	if _, err := secretTool(t, "lookup", "service", "pctoken-helper", "key", key); err == nil {
		t.Fatal("secret-tool still finds the removed item")
	}
}

func TestSecretServiceKeysAreSeparate(t *testing.T) {
	secretServiceBus(t)
	a, _, err := Open(Config{Backend: "secret-service"})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Open(Config{Backend: "secret-service", ServiceName: "other-helper"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"k1", "v1"}, {"k2", "v2"}} {
		if err := a.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Set("k1", "other"); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"k1": "v1", "k2": "v2"} {
		if got, err := a.Get(key); err != nil || got != want {
			t.Errorf("Get(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	if got, _ := b.Get("k1"); got != "other" {
		t.Errorf("another service name sees %q", got)
	}
	for _, k := range []string{"k1", "k2"} {
		a.Remove(k)
	}
	b.Remove("k1")
}

func TestSecretServiceCollections(t *testing.T) {
	secretServiceBus(t)
	for collection, wantPrefix := range map[string]string{
		"session": libsecret.DBusPath + "/collection/session/",
		"/org/freedesktop/secrets/aliases/default": libsecret.DBusPath + "/collection/login/",
	} {
		s, _, err := Open(Config{Backend: "secret-service", Collection: collection, ServiceName: "collection-test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Set("k", collection); err != nil {
			t.Fatalf("Set in %s: %v", collection, err)
		}
		if got, err := s.Get("k"); err != nil || got != collection {
			t.Fatalf("Get in %s = %q, %v", collection, got, err)
		}
		paths := searchAll(t, map[string]string{"service": "collection-test", "key": "k"})
		if len(paths) != 1 || !strings.HasPrefix(string(paths[0]), wantPrefix) {
			t.Fatalf("collection %s: items %v, want one under %s", collection, paths, wantPrefix)
		}
		if err := s.Remove("k"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCollectionPath(t *testing.T) {
	for name, want := range map[string]string{
		"login":      libsecret.DBusPath + "/collection/login",
		"my keyring": libsecret.DBusPath + "/collection/my_20keyring",
		"a_b":        libsecret.DBusPath + "/collection/a_5fb",
		"/org/x/y":   "/org/x/y",
	} {
		if got, err := collectionPath(name); err != nil || string(got) != want {
			t.Errorf("collectionPath(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := collectionPath("/bad path/"); err == nil {
		t.Error("an invalid object path was accepted")
	}
}

func TestSecretServiceAuto(t *testing.T) {
	secretServiceBus(t)
	if _, name, err := Open(Config{FileDir: t.TempDir()}); err != nil || name != "secret-service" {
		t.Fatalf("auto with a working Secret Service = %q, %v", name, err)
	}
	if _, name, err := Open(Config{FileDir: t.TempDir(), Collection: "nonexistent"}); err != nil || name != "file" {
		t.Fatalf("auto with a missing collection = %q, %v", name, err)
	}
	s, _, err := Open(Config{Backend: "secret-service", Collection: "nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("k"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `no collection "nonexistent"`) {
		t.Fatalf("explicit missing collection: %v", err)
	}

	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if _, name, err := Open(Config{FileDir: t.TempDir()}); err != nil || name != "file" {
		t.Fatalf("auto without a bus = %q, %v", name, err)
	}
	_, _, err = Open(Config{Backend: "secret-service"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "--store file") {
		t.Fatalf("explicit secret-service without a bus: %v", err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "autolaunch:")
	if _, name, _ := Open(Config{FileDir: t.TempDir()}); name != "file" {
		t.Fatalf("auto with autolaunch: = %q", name)
	}
}

// TestSecretServiceRuntimeDirBus finds the bus at $XDG_RUNTIME_DIR/bus when
// DBUS_SESSION_BUS_ADDRESS is unset, as on systemd machines.
func TestSecretServiceRuntimeDirBus(t *testing.T) {
	secretServiceBus(t)
	runtimeDir := t.TempDir()
	if err := os.Symlink(secretServiceDaemons.d.Socket, filepath.Join(runtimeDir, "bus")); err != nil {
		t.Fatal(err)
	}
	os.Unsetenv("DBUS_SESSION_BUS_ADDRESS") // t.Setenv in secretServiceBus restores it
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	s, name, err := Open(Config{FileDir: t.TempDir()})
	if err != nil || name != "secret-service" {
		t.Fatalf("auto = %q, %v", name, err)
	}
	if err := s.Set("runtime-dir", "v"); err != nil {
		t.Fatal(err)
	}
	s.Remove("runtime-dir")
}

func TestSecretServiceLocked(t *testing.T) {
	addr := secretServiceBus(t)
	s, _, err := Open(Config{Backend: "secret-service"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set("locked", "v"); err != nil {
		t.Fatal(err)
	}
	conn, err := testkeyring.Conn(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	login := dbus.ObjectPath(libsecret.DBusPath + "/collection/login")
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	err = conn.Object(libsecret.DBusServiceName, libsecret.DBusPath).
		Call("org.freedesktop.Secret.Service.Lock", 0, []dbus.ObjectPath{login}).Store(&locked, &prompt)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockLogin(t, conn)

	start := time.Now()
	for name, op := range map[string]func() error{
		"Get":    func() error { _, err := s.Get("locked"); return err },
		"Set":    func() error { return s.Set("locked", "w") },
		"Remove": func() error { return s.Remove("locked") },
	} {
		err := op()
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "unlock") || !strings.Contains(err.Error(), "--store file") {
			t.Errorf("%s on a locked collection: %v", name, err)
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Error("a locked collection made the store wait")
	}
	if _, name, err := Open(Config{FileDir: t.TempDir()}); err != nil || name != "file" {
		t.Errorf("auto with a locked collection = %q, %v", name, err)
	}
}

// unlockLogin unlocks the login collection the way gnome-keyring's own tools
// do without a prompt, so that later tests find it usable.
func unlockLogin(t *testing.T, conn *dbus.Conn) {
	t.Helper()
	var output dbus.Variant
	var session dbus.ObjectPath
	service := conn.Object(libsecret.DBusServiceName, libsecret.DBusPath)
	if err := service.Call("org.freedesktop.Secret.Service.OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&output, &session); err != nil {
		t.Fatal(err)
	}
	secret := libsecret.Secret{Session: session, Parameters: []byte{}, Value: []byte(testkeyring.Password), ContentType: "text/plain"}
	err := service.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0,
		dbus.ObjectPath(libsecret.DBusPath+"/collection/login"), secret).Err
	if err != nil {
		t.Fatalf("unlocking login: %v", err)
	}
	if err := testkeyring.WaitForLogin(secretServiceDaemons.d.Addr); err != nil {
		t.Fatal(err)
	}
}

// TestSecretServiceConnectsLazily opens the store against a socket that
// records connections: none may come before the first Get.
func TestSecretServiceConnectsLazily(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bus")
	accepted := listenUnix(t, sock)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+sock)
	s, _, err := Open(Config{Backend: "secret-service"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted(); n != 0 {
		t.Fatalf("Open made %d connections", n)
	}
	if _, err := s.Get("k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get against a socket that is no bus: %v", err)
	}
	if n := accepted(); n != 1 {
		t.Fatalf("Get made %d connections, want 1", n)
	}
}

// TestSecretServiceTimeout: a bus that accepts and never answers ends in an
// error within the timeout, not a hang.
func TestSecretServiceTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bus")
	listenSilent(t, sock)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+sock)
	s, err := newSecretService(Config{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	s.timeout = 300 * time.Millisecond
	start := time.Now()
	_, err = s.Get("k")
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("Get against a silent bus: %v after %v", err, time.Since(start))
	}
}

func BenchmarkSecretServiceGet(b *testing.B) {
	secretServiceBus(b)
	s, _, err := Open(Config{Backend: "secret-service"})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Set("bench", "0.AXYA-benchmark-token"); err != nil {
		b.Fatal(err)
	}
	defer s.Remove("bench")
	for b.Loop() {
		if _, err := s.Get("bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSecretServiceOpenGet is a fresh process's cost: connect, open a
// session, check the collection, read.
func BenchmarkSecretServiceOpenGet(b *testing.B) {
	secretServiceBus(b)
	s, _, _ := Open(Config{Backend: "secret-service"})
	if err := s.Set("bench", "0.AXYA-benchmark-token"); err != nil {
		b.Fatal(err)
	}
	defer s.Remove("bench")
	for b.Loop() {
		s, _, _ := Open(Config{Backend: "secret-service"})
		if _, err := s.Get("bench"); err != nil {
			b.Fatal(err)
		}
		s.(*secretService).close()
	}
}

// searchAll asks the Secret Service for the items with attrs, in any
// collection.
func searchAll(t *testing.T, attrs map[string]string) []dbus.ObjectPath {
	t.Helper()
	conn, err := testkeyring.Conn(secretServiceDaemons.d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var unlocked, locked []dbus.ObjectPath
	err = conn.Object(libsecret.DBusServiceName, libsecret.DBusPath).
		Call("org.freedesktop.Secret.Service.SearchItems", 0, attrs).Store(&unlocked, &locked)
	if err != nil {
		t.Fatal(err)
	}
	return append(unlocked, locked...)
}

// listenUnix listens on a unix socket, closing each connection at once, and
// returns a function counting the connections so far.
func listenUnix(t *testing.T, path string) func() int {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return func() int { return int(n.Load()) }
}

// listenSilent accepts connections and never answers.
func listenSilent(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
}
