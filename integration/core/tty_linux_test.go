package core

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/internal/testpty"
)

// Without PCTOKEN_FILE_PASSPHRASE, in a terminal, the helper asks for the passphrase
// on the terminal: the prompt never reaches stdout, which carries only the token, and
// the typed passphrase is not echoed. A wrong one typed there is exit 5.
func TestPassphrasePromptOnTerminal(t *testing.T) {
	t.Parallel()
	e := harness.New(t)
	e.Consent()
	delete(e.Vars, "PCTOKEN_FILE_PASSPHRASE")
	for _, tc := range []struct {
		name, typed string
		code        int
	}{
		{"right", harness.Passphrase, 0},
		{"wrong", "typed-wrong-passphrase", 5},
	} {
		stdout, stderr, screen, code := runOnTerminal(t, e, tc.typed, "get", "--scope", "graph", "--force-refresh", "-o", "token")
		if code != tc.code {
			t.Fatalf("%s passphrase: exit %d, want %d\nstdout %q\nstderr %s\nterminal %q", tc.name, code, tc.code, stdout, stderr, screen)
		}
		t.Logf("%s passphrase: the terminal showed %q", tc.name, screen)
		if strings.Contains(screen, tc.typed) || strings.Contains(stdout+stderr, tc.typed) {
			t.Fatalf("%s passphrase: it was echoed or printed", tc.name)
		}
		if strings.Contains(stdout, "assphrase") {
			t.Fatalf("%s passphrase: prompt on stdout %q", tc.name, stdout)
		}
		switch tc.code {
		case 0:
			tok := strings.TrimSuffix(stdout, "\n")
			if _, err := e.Sim.ValidateAccessToken(tok); err != nil || strings.Contains(tok, "\n") {
				t.Fatalf("stdout is not just the token: %q (%v)", stdout, err)
			}
		default:
			if stdout != "" || !strings.Contains(stderr, "passphrase") {
				t.Fatalf("wrong passphrase: stdout %q stderr %s", stdout, stderr)
			}
		}
	}
}

// runOnTerminal runs the helper with a pseudo-terminal as its controlling terminal
// and stdin, waits for a prompt there, types answer, and returns what the process
// wrote to stdout and stderr, what the terminal showed, and the exit code.
func runOnTerminal(t *testing.T, e *harness.Env, answer string, args ...string) (stdout, stderr, screen string, code int) {
	t.Helper()
	pty := testpty.Open(t)
	master, slave := pty.Master, pty.Slave
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.Command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var mu sync.Mutex
	var shown bytes.Buffer
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			shown.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func() string { mu.Lock(); defer mu.Unlock(); return shown.String() }
	deadline := time.Now().Add(20 * time.Second)
	for !strings.HasSuffix(strings.TrimRight(seen(), " "), ":") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no prompt on the terminal; it shows %q\nstderr %s", seen(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Type only once echo is off, as a person would after the prompt appears.
	for {
		tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
		if err == nil && tio.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo never turned off")
		}
		time.Sleep(5 * time.Millisecond)
	}
	master.WriteString(answer + "\n")
	err := cmd.Wait()
	if cmd.ProcessState == nil {
		t.Fatalf("helper: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	return out.String(), errb.String(), seen(), cmd.ProcessState.ExitCode()
}

// TestLogoutAllAsksOnATerminal: logout --all forgets nothing without --yes where no
// one can be asked, asks on a terminal, and acts only on "y".
func TestLogoutAllAsksOnATerminal(t *testing.T) {
	e := harness.New(t)
	e.Consent("--profile", "contoso")
	e.Consent("--profile", "tailspin")

	res := e.Run("logout", "--all")
	wantExit(t, res, 2, "logout --all without a terminal or --yes")
	if !strings.Contains(res.Stderr, "--yes") {
		t.Fatalf("the error must name --yes:\n%s", res.Stderr)
	}
	for _, answer := range []string{"n", "y"} {
		pty := testpty.Open(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := e.Command(ctx, "logout", "--all")
		var out, errb bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pty.Slave, &out, &errb
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pty.Slave.Close()
		var shown bytes.Buffer
		buf := make([]byte, 512)
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(shown.String(), "[y/N]") && time.Now().Before(deadline) {
			_ = pty.Master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _ := pty.Master.Read(buf)
			shown.Write(buf[:n])
		}
		if !strings.Contains(shown.String(), "contoso, tailspin") {
			cancel()
			t.Fatalf("no question naming the profiles on the terminal: %q", shown.String())
		}
		pty.Master.WriteString(answer + "\n")
		_ = cmd.Wait()
		cancel()
		names := e.MustRun("status", "-o", "json").Stdout
		kept := strings.Contains(names, `"tailspin"`)
		if answer == "n" && (cmd.ProcessState.ExitCode() != 2 || !kept) || answer == "y" && (cmd.ProcessState.ExitCode() != 0 || kept) {
			t.Fatalf("answer %q: exit %d, profiles after: %s\nstderr %s", answer, cmd.ProcessState.ExitCode(), names, errb.String())
		}
	}
}

// TestColourOnlyOnATerminal: error: and hint: stand out on a terminal, never on a
// pipe, never with NO_COLOR.
func TestColourOnlyOnATerminal(t *testing.T) {
	e := harness.New(t)
	run := func(onTerminal bool, vars ...string) string {
		pty := testpty.Open(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := e.Command(ctx, "get", "--scope", "grpah")
		cmd.Env = append(cmd.Env, vars...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if onTerminal {
			cmd.Stderr = pty.Slave
		}
		_ = cmd.Run()
		pty.Slave.Close()
		if !onTerminal {
			return errb.String()
		}
		var shown bytes.Buffer
		buf := make([]byte, 4096)
		for {
			_ = pty.Master.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, err := pty.Master.Read(buf)
			shown.Write(buf[:n])
			if err != nil {
				return shown.String()
			}
		}
	}
	if got := run(true); !strings.Contains(got, "\x1b[1;31merror:\x1b[0m") {
		t.Errorf("on a terminal: %q, want a coloured error:", got)
	}
	if got := run(true, "NO_COLOR=1"); strings.Contains(got, "\x1b[") || !strings.Contains(got, "error:") {
		t.Errorf("with NO_COLOR: %q", got)
	}
	if got := run(false); strings.Contains(got, "\x1b[") || !strings.HasPrefix(got, "error: ") {
		t.Errorf("on a pipe: %q", got)
	}
	// The hint stands out too; a terminal that says it is dumb gets no colour.
	if got := run(true, "PCTOKEN_CLIENT_ID=", "PCTOKEN_PROFILE=nosuch"); !strings.Contains(got, "\x1b[1;36mhint:\x1b[0m") {
		t.Errorf("on a terminal, a hint: %q, want a coloured hint:", got)
	}
	if got := run(true, "TERM=dumb"); strings.Contains(got, "\x1b[") || !strings.Contains(got, "error:") {
		t.Errorf("with TERM=dumb: %q", got)
	}
}
