package reliability

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// argvWatch reads the command line of every process on the machine, over and over,
// while the helper runs, and reports a secret seen in any of them.
type argvWatch struct {
	once    sync.Once
	stop    chan struct{}
	done    chan struct{}
	leak    atomic.Value // string
	sampled atomic.Int64 // helper command lines read
}

func watchArgv(bin string, s *harness.Secrets) *argvWatch {
	w := &argvWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			des, _ := os.ReadDir("/proc")
			for _, de := range des {
				if _, err := strconv.Atoi(de.Name()); err != nil {
					continue
				}
				cmd, err := os.ReadFile(filepath.Join("/proc", de.Name(), "cmdline"))
				if err != nil || len(cmd) == 0 {
					continue
				}
				if bytes.HasPrefix(cmd, []byte(bin+"\x00")) {
					w.sampled.Add(1)
				}
				if what := s.Find(string(cmd), true); what != "" && w.leak.Load() == nil {
					w.leak.Store(what + " in the argv of pid " + de.Name() + ": " + short(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))))
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return w
}

func (w *argvWatch) finish() (leak string, sampled int64) {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	if v := w.leak.Load(); v != nil {
		leak = v.(string)
	}
	return leak, w.sampled.Load()
}

// TestNoSecretLeaks runs every command, verbose, through success and failure, with a
// public client, a confidential client whose secret is kept in the store, and in CI
// mode, and checks that no refresh token and no client secret ever appears on stdout
// or stderr, in any file outside the secure store (which is encrypted), or in the
// argv of any process on the machine while the helper works. It also checks the
// modes: files 0600, folders 0700.
func TestNoSecretLeaks(t *testing.T) { noSecretLeaks(t, false) }

// TestNoSecretLeaksUnderAnEchoingIdP is the same scan with an identity provider that
// quotes every request in its errors (harness.EchoIdP in front of the simulator, as a
// WAF or a careless proxy would): the errors the steps provoke carry the refresh
// token, the client secret and the rest back, and none of it may be shown or kept.
func TestNoSecretLeaksUnderAnEchoingIdP(t *testing.T) { noSecretLeaks(t, true) }

func noSecretLeaks(t *testing.T, echo bool) {
	t.Parallel()
	e := newEnv(t)
	if echo {
		idp := harness.StartEchoIdP(t, e.Sim)
		idp.SetMode(harness.EchoOnError)
		e.Vars["PCTOKEN_AUTHORITY_HOST"] = idp.URL()
		e.Vars["SSL_CERT_FILE"] = idp.CAFile()
	}
	e.UseTestBinaryAsBrowser()
	e.Vars["PCTOKEN_VERBOSE"] = "1" // diagnostics everywhere: they must be redacted too
	var s harness.Secrets
	s.Add("the client secret", entrasim.ClientSecret)
	wrongSecret := "wrong-secret-Q~" + strings.Repeat("z", 30)
	s.Add("a wrong client secret", wrongSecret)
	// Slow answers keep the helper running, so the argv watch sees it at work.
	e.Sim.SetLatency(100 * time.Millisecond)
	watch := watchArgv(e.Bin, &s)
	defer watch.finish()

	var outputs []string
	collect := func() {
		for _, p := range []string{"default", "conf"} {
			if rt, err := fileStore(t, e).Get("refresh-token:" + p); err == nil {
				s.Add("the refresh token of "+p, rt)
			}
		}
	}
	type step struct {
		name  string
		stdin string
		env   map[string]string
		args  []string
		code  int
		setup func()
	}
	conf := []string{"--profile", "conf", "--client-id", entrasim.ConfidentialClientID}
	steps := []step{
		{name: "device-code consent", args: []string{"consent", "--flow", "device-code"}},
		{name: "auth-code consent with a stored secret", stdin: entrasim.ClientSecret + "\n",
			args: append([]string{"consent", "--client-secret-stdin", "--timeout", "30s"}, conf...)},
		{name: "get json", args: []string{"get"}},
		{name: "get token", args: []string{"get", "-o", "token", "--force-refresh"}},
		{name: "get az", args: []string{"get", "-o", "az", "--scope", "arm"}},
		{name: "get azd", args: []string{"get", "-o", "azd", "--scope", "graph", "--tenant", entrasim.CustomerTenantID}},
		{name: "get confidential", args: append([]string{"get", "--force-refresh"}, conf...)},
		{name: "get batch", stdin: `{"id":1}` + "\n" + `{"id":2,"profile":"conf","scopes":["graph"],"force_refresh":true}` + "\n" + `{"id":3,"tenant":"` + entrasim.OtherTenantID + `"}` + "\n{broken\n",
			args: []string{"get", "--request", "-"}, code: 2},
		{name: "exec-credential", args: []string{"exec-credential", "-s", "partner-center", "--force-refresh"},
			env: map[string]string{"KUBERNETES_EXEC_INFO": `{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}`}},
		{name: "git-credential get", stdin: "capability[]=authtype\nprotocol=https\nhost=dev.azure.com\n\n", args: []string{"git-credential", "--scope", "azure-devops", "get"}},
		{name: "git-credential get, other host", stdin: "protocol=https\nhost=evil.example\n\n", args: []string{"git-credential", "get"}},
		{name: "git-credential store", stdin: "protocol=https\nhost=dev.azure.com\nusername=pctoken\npassword=x\n\n", args: []string{"git-credential", "store"}},
		{name: "git-credential erase", stdin: "protocol=https\nhost=dev.azure.com\nusername=pctoken\npassword=x\n\n", args: []string{"git-credential", "erase"}},
		{name: "status text", args: []string{"status"}},
		{name: "status json", args: []string{"status", "-o", "json"}},
		{name: "renew", args: []string{"renew"}},
		{name: "renew all", args: []string{"renew", "--all"}},
		{name: "doctor", args: []string{"doctor", "-v"}},
		{name: "doctor json", args: []string{"doctor", "-o", "json", "--profile", "conf"}},
		{name: "profile list", args: []string{"profile", "list", "-o", "json"}},
		{name: "profile show", args: []string{"profile", "show", "conf"}},
		{name: "transient failure", args: []string{"get", "--force-refresh"}, code: 4, setup: func() { e.Sim.FailNext(100, 503) }},
		{name: "wrong client secret", args: append([]string{"get", "--force-refresh"}, conf...), code: 5,
			env: map[string]string{"PCTOKEN_CLIENT_SECRET": wrongSecret}, setup: func() { e.Sim.FailNext(0, 500) }},
		{name: "version", args: []string{"version"}},
		{name: "help", args: []string{"--help"}},
		{name: "get help", args: []string{"get", "--help"}},
		{name: "consent help", args: []string{"consent", "--help"}},
		{name: "bad flag", args: []string{"get", "--nope"}, code: 2},
	}
	run := func(st step) {
		t.Helper()
		if st.setup != nil {
			st.setup()
		}
		res := runOpen(t, e, time.Minute, st.stdin, false, st.env, st.args...)
		if res.Code != st.code {
			t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", st.name, res.Code, st.code, short(res.Stdout), short(res.Stderr))
		}
		collect()
		outputs = append(outputs, st.name+" stdout\x00"+res.Stdout, st.name+" stderr\x00"+res.Stderr)
	}
	for i, st := range steps {
		run(st)
		if i == 0 {
			// From here on each profile uses the client id it saved at consent.
			delete(e.Vars, "PCTOKEN_CLIENT_ID")
		}
	}
	// import: the refresh token comes in on stdin; it must not come back out.
	rt := storedRefreshToken(t, e, "default")
	run(step{name: "import", stdin: rt + "\n", args: []string{"import", "--profile", "imported", "--client-id", entrasim.PublicClientID}})
	// CI mode: the refresh token in the environment; rotated ones cannot be saved.
	run(step{name: "CI mode", args: []string{"get", "--force-refresh", "--profile", "ci", "--client-id", entrasim.PublicClientID, "--tenant", entrasim.HomeTenantID},
		env: map[string]string{"PCTOKEN_REFRESH_TOKEN": rt}})
	// Consent needed, after the refresh tokens expire.
	run(step{name: "expired refresh token", args: []string{"get", "--force-refresh"}, code: 3, setup: e.Sim.ExpireRefreshTokens})
	run(step{name: "import of an expired token", stdin: rt + "\n", args: []string{"import", "--profile", "again", "--client-id", entrasim.PublicClientID}, code: 3})
	e.Sim.SetLatency(0)

	leak, sampled := watch.finish()
	if leak != "" {
		t.Fatal(leak)
	}
	if sampled < 20 {
		t.Fatalf("the argv watch saw the helper only %d times; it proves nothing", sampled)
	}
	echoed := false
	for _, o := range outputs {
		name, text, _ := strings.Cut(o, "\x00")
		if what := s.Find(text, true); what != "" {
			t.Fatalf("%s: %s", name, what)
		}
		echoed = echoed || strings.Contains(text, "request was:")
	}
	if echo && !echoed {
		t.Fatal("no output showed the identity provider's echo: the scan proves nothing about it")
	}
	// Every file the helper wrote, outside the (encrypted) store: no secret. The
	// store's files must not hold one in clear either.
	if err := filepath.WalkDir(e.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path == filepath.Join(e.Dir, "sim") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if what := s.Find(string(b), true); what != "" {
			t.Errorf("%s holds %s", path, what)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	checkModes(t, cacheDir(e), configDir(e), storeDir(e))
	t.Logf("%d secrets checked against %d outputs, every file, and %d helper command lines", s.Len(), len(outputs), sampled)

	// logout forgets the refresh tokens and the stored secret.
	e.MustRun("logout", "--all", "--yes")
	for _, key := range []string{"refresh-token:default", "refresh-token:conf", "client-secret:conf"} {
		if v, err := fileStore(t, e).Get(key); err == nil {
			t.Fatalf("after logout --all the store still holds %s (%d bytes)", key, len(v))
		}
	}
}

// checkModes fails the test unless every folder under dirs is 0700 and every file 0600.
func checkModes(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := os.Lstat(path)
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s is %v, want %v", path, fi.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", dir, err)
		}
	}
}

// TestUnsafeCacheFolderIsRefused: a cache folder that others can write to (or that
// belongs to someone else) could hand the helper tokens of their choosing, or read
// what it writes: the helper refuses to use it, with a clear error, and works again
// once the folder is safe. Owners are checked only when the test runs as root.
func TestUnsafeCacheFolderIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get")
	dir := cacheDir(e)
	sticky := filepath.Join(e.Dir, "shared-tmp")
	if err := os.Mkdir(sticky, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(sticky, 0o1777)
	cases := []struct {
		name  string
		args  []string
		setup func() error
		undo  func() error
	}{
		{"world-writable", nil, func() error { return os.Chmod(dir, 0o777) }, func() error { return os.Chmod(dir, 0o700) }},
		{"group-writable", nil, func() error { return os.Chmod(dir, 0o770) }, func() error { return os.Chmod(dir, 0o700) }},
		{"a shared /tmp-like folder", []string{"--cache-dir", sticky}, func() error { return nil }, func() error { return nil }},
	}
	if os.Getuid() == 0 {
		cases = append(cases, struct {
			name  string
			args  []string
			setup func() error
			undo  func() error
		}{"owned by another user", nil, func() error { return os.Chown(dir, 65534, 65534) }, func() error { return os.Chown(dir, 0, 0) }})
	}
	for _, c := range cases {
		if err := c.setup(); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"get"}, {"get", "--force-refresh"}, {"exec-credential", "-s", "partner-center"}} {
			res := runOpen(t, e, badInputLimit, "", false, nil, append(args, c.args...)...)
			noPanic(t, c.name, res)
			if res.Code == 0 || !strings.Contains(res.Stderr, "error: ") {
				t.Fatalf("%s cache folder, %v: exit %d, want a refusal\nstdout: %s\nstderr: %s", c.name, args, res.Code, short(res.Stdout), res.Stderr)
			}
			if strings.Contains(res.Stdout, "access_token\":\"ey") || strings.Contains(res.Stdout, "\"token\":\"ey") {
				t.Fatalf("%s cache folder, %v: a token was handed out", c.name, args)
			}
		}
		if err := c.undo(); err != nil {
			t.Fatal(err)
		}
		e.MustRun("get")
	}
}

// TestConsentListenerIsLoopbackOnly: the auth-code redirect listener accepts
// connections on the loopback interface only: /proc/net shows it bound to 127.0.0.1,
// and a connection to any other address of this machine is refused. The consent then
// completes through the loopback address.
func TestConsentListenerIsLoopbackOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.Command(ctx, "consent", "--no-browser", "--port-range", "8600-8699", "--timeout", "45s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var authURL string
	port := 0
	sc := bufio.NewScanner(stderr)
	portRe := regexp.MustCompile(`Waiting for the redirect to http://localhost:(\d+)`)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "https://") && authURL == "" {
			authURL = line
		}
		if m := portRe.FindStringSubmatch(line); m != nil {
			port, _ = strconv.Atoi(m[1])
			break
		}
	}
	if port == 0 || authURL == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("consent printed no URL and port (%v)", sc.Err())
	}
	go io.Copy(io.Discard, stderr)

	listeners := listeningOn(t, port)
	if len(listeners) == 0 {
		t.Fatalf("nothing listens on port %d", port)
	}
	for _, addr := range listeners {
		if !addr.IsLoopback() {
			t.Errorf("the consent listener is bound to %s, not loopback", addr)
		}
	}
	addrs, _ := net.InterfaceAddrs()
	tried := 0
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		tried++
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), strconv.Itoa(port)), 2*time.Second)
		if err == nil {
			c.Close()
			t.Errorf("the consent listener accepted a connection on %s", ipn.IP)
		}
	}
	t.Logf("listener on port %d bound to %v; %d non-loopback addresses refused", port, listeners, tried)

	status, _, err := e.Sim.Browse(ctx, authURL)
	if err != nil || status != 200 {
		t.Fatalf("browser: %d %v", status, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consent: %v", err)
	}
}

// listeningOn returns the local addresses of TCP sockets listening on port, from
// /proc/net/tcp and /proc/net/tcp6.
func listeningOn(t *testing.T, port int) []net.IP {
	t.Helper()
	var out []net.IP
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			hostHex, portHex, ok := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(portHex, 16, 16); !ok || err != nil || int(p) != port {
				continue
			}
			out = append(out, procNetIP(hostHex))
		}
	}
	return out
}

// procNetIP decodes an address of /proc/net/tcp{,6}: 32-bit words in host (little
// endian) order.
func procNetIP(h string) net.IP {
	var ip net.IP
	for i := 0; i+8 <= len(h); i += 8 {
		w, _ := strconv.ParseUint(h[i:i+8], 16, 32)
		ip = append(ip, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	return ip
}
