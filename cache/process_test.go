package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the helper process of the cross-process tests: run
// with helperEnv set, it plays one get or one writer instead of running tests.
const (
	helperEnv    = "PCTOKEN_CACHE_TEST_HELPER"
	helperDirEnv = "PCTOKEN_CACHE_TEST_DIR"
	counterEnv   = "PCTOKEN_CACHE_TEST_COUNTER"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "get":
		os.Exit(helperGet(os.Getenv(helperDirEnv), os.Getenv(counterEnv)))
	case "store-loop":
		os.Exit(helperStoreLoop(os.Getenv(helperDirEnv)))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode")
		os.Exit(2)
	}
}

func helperCommand(t *testing.T, mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// helperGet does what `get` does: a fresh cached token is used as it is;
// otherwise the key is locked, the cache read again, and only if the entry is
// still stale is the token "refreshed" (a line appended to the counter file)
// and stored. It waits for its stdin to close, so that all start together.
func helperGet(dir, counter string) int {
	_, _ = io.Copy(io.Discard, os.Stdin)
	c, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	k := baseKey()
	if e, ok := c.Load(k); ok && Fresh(e, time.Now(), DefaultMinValidity) {
		fmt.Println(e.AccessToken)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	unlock, err := c.Lock(ctx, k)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer unlock()
	if e, ok := c.Load(k); ok && Fresh(e, time.Now(), DefaultMinValidity) {
		fmt.Println(e.AccessToken)
		return 0
	}
	f, err := os.OpenFile(counter, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
	// A slow identity provider: the window in which a second refresh could start.
	time.Sleep(200 * time.Millisecond)
	e := sampleEntry(fmt.Sprintf("token-of-%d", os.Getpid()))
	if err := c.Store(k, e); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(e.AccessToken)
	return 0
}

func TestManyProcessesRefreshOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 64 processes")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	counter := filepath.Join(t.TempDir(), "refreshes")
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// An expired entry is what all of them find first.
	expired := sampleEntry("expired-token")
	expired.ExpiresOn = time.Now().Add(-time.Minute)
	if err := c.Store(baseKey(), expired); err != nil {
		t.Fatal(err)
	}

	const n = 64
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	starts := make([]io.WriteCloser, n)
	for i := range cmds {
		cmd := helperCommand(t, "get", helperDirEnv+"="+dir, counterEnv+"="+counter)
		cmd.Stdout = &outs[i]
		if starts[i], err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for _, s := range starts {
		s.Close()
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}

	data, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	refreshers := strings.Fields(string(data))
	if len(refreshers) != 1 {
		t.Fatalf("%d refreshes, want 1 (by pids %v)", len(refreshers), refreshers)
	}
	want := "token-of-" + refreshers[0]
	for i := range outs {
		if got := strings.TrimSpace(outs[i].String()); got != want {
			t.Errorf("process %d got %q, want %q", i, got, want)
		}
	}
}

// helperStoreLoop stores entries of varying size under a few keys until killed.
// Each token starts with its own length, so a file mixing two writes shows.
func helperStoreLoop(dir string) int {
	c, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	keys := crashKeys()
	fmt.Println("ready")
	for i := 0; ; i++ {
		if err := c.Store(keys[i%len(keys)], sampleEntry(crashToken(rand.IntN(200_000)))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

func crashKeys() []Key {
	keys := make([]Key, 3)
	for i := range keys {
		keys[i] = baseKey()
		keys[i].Tenant = fmt.Sprintf("tenant%d", i)
	}
	return keys
}

func crashToken(n int) string {
	return fmt.Sprintf("%08d.", n) + strings.Repeat("x", n)
}

// checkCrashToken reports whether a token is one crashToken made whole.
func checkCrashToken(tok string) error {
	head, body, ok := strings.Cut(tok, ".")
	n, err := strconv.Atoi(head)
	if !ok || err != nil || len(body) != n || strings.Trim(body, "x") != "" {
		return fmt.Errorf("token of %d bytes is not whole", len(tok))
	}
	return nil
}

// checkEntryFiles requires every data file to be absent or a whole entry.
func checkEntryFiles(c *Cache, keys []Key) error {
	for _, k := range keys {
		data, err := readEntryFile(c.dataPath(k.ID()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		e, err := decodeEntry(data)
		if err != nil {
			return fmt.Errorf("%s: %w", k.Tenant, err)
		}
		if err := checkCrashToken(e.AccessToken); err != nil {
			return fmt.Errorf("%s: %w", k.Tenant, err)
		}
	}
	return nil
}

func TestKilledWritersLeaveNoPartialEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hundreds of processes")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := crashKeys()

	// A reader checks the files all along, as kubectl would read them.
	stop := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				readerErr <- nil
				return
			default:
			}
			if err := checkEntryFiles(c, keys); err != nil {
				readerErr <- err
				return
			}
			time.Sleep(time.Millisecond) // leave the cores to the writers
		}
	}()

	const processes, parallel = 200, 4
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range processes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cmd := helperCommand(t, "store-loop", helperDirEnv+"="+dir)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Error(err)
				return
			}
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				t.Errorf("process %d: %q", i, line)
			}
			time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
			_ = cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
			_ = cmd.Wait()
		})
	}
	wg.Wait()
	close(stop)
	if err := <-readerErr; err != nil {
		t.Fatalf("a reader saw a partial entry: %v", err)
	}
	if err := checkEntryFiles(c, keys); err != nil {
		t.Fatalf("after the kills: %v", err)
	}
	stored := 0
	for _, k := range keys {
		if _, ok := c.Load(k); ok {
			stored++
		}
	}
	if stored == 0 {
		t.Fatal("no writer ever completed a store; the test proved nothing")
	}

	// Writers killed between creating and renaming their temp file leave it
	// behind; once old enough, the next store removes them all.
	tmp := filepath.Join(dir, "tmp")
	des, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d killed writers left a temp file", len(des), processes)
	old := time.Now().Add(-2 * staleTempAge)
	for _, de := range des {
		if err := os.Chtimes(filepath.Join(tmp, de.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Store(keys[0], sampleEntry(crashToken(10))); err != nil {
		t.Fatal(err)
	}
	if des, err := os.ReadDir(tmp); err != nil || len(des) != 0 {
		t.Fatalf("tmp/ after a store: %d files, %v", len(des), err)
	}
}
