//go:build unix

package securestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv, when set, makes the test binary act as a small client of the
// store instead of running tests: the way to check behaviour across
// processes, with no terminal, or under SIGKILL.
const childEnv = "PCTOKEN_SECURESTORE_TEST_CHILD"

func TestMain(m *testing.M) {
	if op := os.Getenv(childEnv); op != "" {
		os.Exit(runChildOp(op))
	}
	code := m.Run()
	stopSecretService()
	os.Exit(code)
}

// childReport is what a child writes on stderr. stdout stays empty: tests
// assert it, since the helper's stdout carries the protocol.
type childReport struct {
	Backend string   `json:"backend"`
	Value   string   `json:"value"`
	Error   string   `json:"error"`
	Is      []string `json:"is"`
	TTY     string   `json:"tty"`
}

var sentinels = map[string]error{
	"ErrNotFound":        ErrNotFound,
	"ErrNoPassphrase":    ErrNoPassphrase,
	"ErrWrongPassphrase": ErrWrongPassphrase,
	"ErrUnavailable":     ErrUnavailable,
	"ErrLocked":          ErrLocked,
	"ErrUnknownBackend":  ErrUnknownBackend,
}

func childConfig() Config {
	return Config{
		Backend:    os.Getenv("CHILD_BACKEND"),
		FileDir:    os.Getenv("CHILD_DIR"),
		Collection: os.Getenv("CHILD_COLLECTION"),
		Passphrase: os.Getenv("CHILD_PASSPHRASE"),
		Prompt:     os.Getenv("CHILD_PROMPT") == "1",
	}
}

func runChildOp(op string) int {
	cfg := childConfig()
	var rep childReport
	var tty *fakeTTY
	if op == "fake-tty" {
		tty = newFakeTTY(strings.Split(os.Getenv("CHILD_TTY_ANSWERS"), ","))
		cfg.TTY = tty.open
	}
	key, value := os.Getenv("CHILD_KEY"), os.Getenv("CHILD_VALUE")
	s, backend, err := Open(cfg)
	rep.Backend = backend
	if err == nil {
		switch op {
		case "get":
			rep.Value, err = s.Get(key)
		case "set":
			err = s.Set(key, value)
		case "remove":
			err = s.Remove(key)
		case "fake-tty":
			if err = s.Set(key, value); err == nil {
				rep.Value, err = s.Get(key)
			}
			rep.TTY = tty.transcript()
		case "set-loop":
			// Rewrite the entry until killed, with values of changing length,
			// so that a torn file could not pass for a whole one. After the
			// first write, say so on fd 3: the parent then kills at random.
			ready := os.NewFile(3, "ready")
			for i := 0; err == nil; i++ {
				err = s.Set(key, fmt.Sprintf("%s-%d-%s", value, i, strings.Repeat("x", i%97)))
				if i == 0 {
					ready.Write([]byte{1})
					ready.Close()
				}
			}
		default:
			err = fmt.Errorf("unknown child op %q", op)
		}
	}
	if err != nil {
		rep.Error = err.Error()
		for name, target := range sentinels {
			if errors.Is(err, target) {
				rep.Is = append(rep.Is, name)
			}
		}
	}
	json.NewEncoder(os.Stderr).Encode(rep)
	return 0
}

type child struct {
	op     string
	env    map[string]string
	setsid bool
}

// run starts the test binary as a child and returns its report. It fails the
// test if the child wrote anything to stdout or took longer than 20s.
func (c child) run(t testing.TB) childReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := childCommand(ctx, c.op)
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if c.setsid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s: %v\nstderr: %s", c.op, err, stderr.Bytes())
	}
	if stdout.Len() != 0 {
		t.Fatalf("child %s wrote to stdout: %q", c.op, stdout.Bytes())
	}
	var rep childReport
	if err := json.Unmarshal(stderr.Bytes(), &rep); err != nil {
		t.Fatalf("child %s: bad report %q: %v", c.op, stderr.Bytes(), err)
	}
	return rep
}

// childCommand is the test binary run as a child doing op.
func childCommand(ctx context.Context, op string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+op,
		// A race-enabled binary otherwise waits a second before exiting.
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	return cmd
}

func (r childReport) is(name string) bool {
	for _, n := range r.Is {
		if n == name {
			return true
		}
	}
	return false
}

// fakeTTY is a terminal made of pipes: a "user" goroutine waits for each
// prompt and types the next answer, as a person would.
type fakeTTY struct {
	answers []string
	in      *io.PipeReader
	typist  *io.PipeWriter
	out     chan string
	opens   int
	written strings.Builder
}

func newFakeTTY(answers []string) *fakeTTY {
	return &fakeTTY{answers: answers}
}

func (f *fakeTTY) open() (io.ReadWriteCloser, error) {
	f.opens++
	f.in, f.typist = io.Pipe()
	f.out = make(chan string, 1)
	go func(out chan string, typist *io.PipeWriter) {
		for prompt := range out {
			if len(f.answers) == 0 || !strings.HasSuffix(prompt, ": ") {
				typist.CloseWithError(io.EOF)
				return
			}
			answer := f.answers[0]
			f.answers = f.answers[1:]
			io.WriteString(typist, answer+"\n")
		}
		typist.Close()
	}(f.out, f.typist)
	return f, nil
}

func (f *fakeTTY) Read(p []byte) (int, error) { return f.in.Read(p) }

func (f *fakeTTY) Write(p []byte) (int, error) {
	f.written.Write(p)
	f.out <- string(p)
	return len(p), nil
}

func (f *fakeTTY) Close() error {
	close(f.out)
	return f.in.Close()
}

func (f *fakeTTY) transcript() string { return f.written.String() }
