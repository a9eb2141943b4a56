//go:build unix

package busguard

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// This test binary links busguard too; give it back its environment.
	Restore()
	code := m.Run()
	if programs.dir != "" {
		os.RemoveAll(programs.dir)
	}
	os.Exit(code)
}

// programs holds the two test programs, built once: probe links securestore
// (keyring behind busguard), unguarded links keyring alone.
var programs struct {
	once sync.Once
	dir  string
	err  error
}

func build(t *testing.T) (probe, unguarded string) {
	t.Helper()
	programs.once.Do(func() {
		programs.dir, programs.err = os.MkdirTemp("", "busguard-")
		if programs.err != nil {
			return
		}
		for _, name := range []string{"probe", "unguarded"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(programs.dir, name), "./testdata/"+name).CombinedOutput()
			if err != nil {
				programs.err = fmt.Errorf("building %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if programs.err != nil {
		t.Fatal(programs.err)
	}
	return filepath.Join(programs.dir, "probe"), filepath.Join(programs.dir, "unguarded")
}

type report struct {
	Addr     string   `json:"addr"`
	Set      bool     `json:"set"`
	Backends []string `json:"backends"`
}

// baseEnv is this process's environment without the variables the tests
// set themselves.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "PCTOKEN_STORE", "GODEBUG", "DISABLE_KWALLET":
			continue
		}
		env = append(env, kv)
	}
	return env
}

func run(t *testing.T, program string, env []string, args ...string) (report, string) {
	t.Helper()
	cmd := exec.Command(program, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", filepath.Base(program), err, stderr.Bytes())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s hung", filepath.Base(program))
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%s printed %q: %v", filepath.Base(program), stdout.Bytes(), err)
	}
	return rep, stderr.String()
}

func hasBusBackend(r report) bool {
	return slices.Contains(r.Backends, "secret-service") || slices.Contains(r.Backends, "kwallet")
}

// TestNoAutolaunch: with no bus address, godbus would run dbus-launch; a
// fake one first on PATH records whether it ran.
func TestNoAutolaunch(t *testing.T) {
	probe, unguarded := build(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	log := filepath.Join(dir, "dbus-launch.log")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho ran >> '" + log + "'\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "dbus-launch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "XDG_RUNTIME_DIR=" + t.TempDir()}
	env = append(baseEnv(), env...)

	rep, _ := run(t, probe, env)
	if _, err := os.Stat(log); err == nil {
		t.Fatal("dbus-launch ran")
	}
	if rep.Set || hasBusBackend(rep) {
		t.Fatalf("probe saw %+v, want the variable unset and no bus backend", rep)
	}

	// Set but empty is put back as such.
	rep, _ = run(t, probe, append(env, "DBUS_SESSION_BUS_ADDRESS="))
	if !rep.Set || rep.Addr != "" {
		t.Fatalf("probe saw %+v, want the variable set and empty", rep)
	}
	if _, err := os.Stat(log); err == nil {
		t.Fatal("dbus-launch ran")
	}

	// The control: without the guard, keyring's init runs dbus-launch.
	if _, err := os.Stat("/run/user/" + strconv.Itoa(os.Getuid()) + "/bus"); err == nil {
		t.Skip("godbus would find /run/user/<uid>/bus before running dbus-launch")
	}
	run(t, unguarded, env)
	if _, err := os.Stat(log); err != nil {
		t.Fatalf("the control did not run the fake dbus-launch, so the test proves nothing: %v", err)
	}
}

// TestNoStrayDaemon uses dbus-x11's real dbus-launch: no dbus-daemon may
// outlive the probe. Processes are found by a variable only they inherit.
func TestNoStrayDaemon(t *testing.T) {
	if _, err := exec.LookPath("dbus-launch"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dbus-launch is not installed (apt-get install dbus-x11)")
		}
		t.Skip("dbus-launch is not installed (apt-get install dbus-x11)")
	}
	if _, err := os.Stat("/run/user/" + strconv.Itoa(os.Getuid()) + "/bus"); err == nil {
		t.Skip("godbus would find /run/user/<uid>/bus before running dbus-launch")
	}
	probe, unguarded := build(t)
	mark := "PCTOKEN_BUSGUARD_MARK=" + rand.Text()
	env := append(baseEnv(), "XDG_RUNTIME_DIR="+t.TempDir(), mark)

	run(t, probe, env)
	if pids := marked(t, mark); len(pids) != 0 {
		killAll(pids)
		t.Fatalf("processes left by the probe: %v", pids)
	}

	// The control: without the guard a daemon is left behind. Stop it.
	run(t, unguarded, env)
	pids := marked(t, mark)
	killAll(pids)
	if len(pids) == 0 {
		t.Fatal("the control left no daemon, so the test proves nothing")
	}
	if left := marked(t, mark); len(left) != 0 {
		t.Fatalf("could not stop the control's daemons: %v", left)
	}
}

// marked lists the processes whose environment holds mark.
func marked(t *testing.T, mark string) []int {
	t.Helper()
	des, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var pids []int
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", de.Name(), "environ"))
		if err == nil && slices.Contains(strings.Split(string(env), "\x00"), mark) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killAll(pids []int) {
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(50 * time.Millisecond)
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

// TestNoConnectionAtStartup points the bus variable at a socket of the
// test's: the probe must not connect, and its main must see the variable as
// it was.
func TestNoConnectionAtStartup(t *testing.T) {
	probe, unguarded := build(t)
	sock := filepath.Join(t.TempDir(), "bus")
	accepted := listenUnix(t, sock)
	addr := "unix:path=" + sock
	env := append(baseEnv(), "DBUS_SESSION_BUS_ADDRESS="+addr)

	rep, _ := run(t, probe, env)
	if n := accepted(); n != 0 {
		t.Fatalf("the probe connected %d times at start-up", n)
	}
	if !rep.Set || rep.Addr != addr {
		t.Fatalf("main saw %+v, want %q restored", rep, addr)
	}
	if hasBusBackend(rep) {
		t.Fatalf("bus backends registered: %v", rep.Backends)
	}

	run(t, unguarded, env)
	if accepted() == 0 {
		t.Fatal("the control did not connect, so the test proves nothing")
	}
}

// TestKwalletStandsAside: asking for kwallet lets keyring dial the bus at
// start-up, which its kwallet backend needs.
func TestKwalletStandsAside(t *testing.T) {
	probe, _ := build(t)
	for _, tc := range []struct {
		name    string
		env     []string
		args    []string
		connect bool
	}{
		{"env", []string{"PCTOKEN_STORE=kwallet"}, nil, true},
		{"flag", nil, []string{"get", "--store", "kwallet"}, true},
		{"flag=", nil, []string{"get", "--store=kwallet"}, true},
		{"other store", []string{"PCTOKEN_STORE=file"}, []string{"--store", "file"}, false},
		{"after --", nil, []string{"--", "--store=kwallet"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "bus")
			accepted := listenUnix(t, sock)
			env := append(baseEnv(), "DBUS_SESSION_BUS_ADDRESS=unix:path="+sock)
			run(t, probe, append(env, tc.env...), tc.args...)
			if got := accepted() > 0; got != tc.connect {
				t.Fatalf("connected at start-up: %v, want %v", got, tc.connect)
			}
		})
	}
}

// TestKwalletWithoutBus: asking for kwallet with no bus to find must not
// autolaunch one either.
func TestKwalletWithoutBus(t *testing.T) {
	if _, err := os.Stat("/run/user/" + strconv.Itoa(os.Getuid()) + "/bus"); err == nil {
		t.Skip("there is a bus at /run/user/<uid>/bus")
	}
	probe, _ := build(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "dbus-launch.log")
	script := "#!/bin/sh\necho ran >> '" + log + "'\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "dbus-launch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(baseEnv(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "PCTOKEN_STORE=kwallet")
	rep, _ := run(t, probe, env)
	if _, err := os.Stat(log); err == nil {
		t.Fatal("dbus-launch ran")
	}
	if rep.Set || hasBusBackend(rep) {
		t.Fatalf("probe saw %+v", rep)
	}
}

func TestItoa(t *testing.T) {
	for _, n := range []int{0, 7, 10, 1000, 65534, -1} {
		if got := itoa(n); got != strconv.Itoa(n) {
			t.Errorf("itoa(%d) = %q", n, got)
		}
	}
}

// TestInitOrder reads the runtime's own trace of package initialisation.
func TestInitOrder(t *testing.T) {
	probe, _ := build(t)
	_, trace := run(t, probe, append(baseEnv(), "GODEBUG=inittrace=1"))
	order := func(pkg string) int {
		for i, line := range strings.Split(trace, "\n") {
			if strings.HasPrefix(line, "init "+pkg+" @") {
				return i
			}
		}
		t.Fatalf("%s not in the init trace:\n%s", pkg, trace)
		return 0
	}
	guard := order("github.com/pctoken/pctoken-helper/securestore/busguard")
	ring := order("github.com/99designs/keyring")
	store := order("github.com/pctoken/pctoken-helper/securestore")
	if !(guard < ring && ring < store) {
		t.Fatalf("init order busguard %d, keyring %d, securestore %d; want busguard < keyring < securestore", guard, ring, store)
	}
}

func TestKwalletRequested(t *testing.T) {
	for _, tc := range []struct {
		env  string
		args []string
		want bool
	}{
		{"kwallet", []string{"prog"}, true},
		{"", []string{"prog", "get", "--store", "kwallet"}, true},
		{"", []string{"prog", "--store=kwallet"}, true},
		{"", []string{"prog", "--store"}, false},
		{"", []string{"--store=kwallet"}, false}, // the program name is not an argument
		{"", []string{"prog", "--", "--store", "kwallet"}, false},
		{"", []string{"prog", "--store", "file", "kwallet"}, false},
		{"KWallet", nil, false},
		{"", nil, false},
	} {
		if got := kwalletRequested(tc.env, tc.args); got != tc.want {
			t.Errorf("kwalletRequested(%q, %q) = %v, want %v", tc.env, tc.args, got, tc.want)
		}
	}
}

// FuzzKwalletRequested: any command line is read without a panic, and only
// the spellings of --store kwallet count.
func FuzzKwalletRequested(f *testing.F) {
	f.Add("", "prog\x00get\x00--store\x00kwallet")
	f.Add("kwallet", "prog")
	f.Add("", "prog\x00--store=kwallet")
	f.Add("", "prog\x00--store")
	f.Fuzz(func(t *testing.T, env, argv string) {
		args := strings.Split(argv, "\x00")
		got := kwalletRequested(env, args)
		if got && env != "kwallet" && !slices.Contains(args[1:], "--store=kwallet") && !slices.Contains(args[1:], "kwallet") {
			t.Fatalf("kwalletRequested(%q, %q) = true", env, args)
		}
	})
}
