package securestore

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/internal/testpty"
	"golang.org/x/sys/unix"
)

// TestPromptOnRealTerminal runs a child whose controlling terminal is a pty,
// as a user's shell would: the prompt and nothing else reaches the terminal,
// the typed passphrase is not echoed, and stdout stays empty.
func TestPromptOnRealTerminal(t *testing.T) {
	dir := t.TempDir()
	const passphrase = "typed-on-the-terminal"
	if err := openTestFile(t, dir, passphrase).Set("k", "from-the-store"); err != nil {
		t.Fatal(err)
	}
	pty := testpty.Open(t)
	master, slave := pty.Master, pty.Slave

	cmd := childCommand(context.Background(), "get")
	cmd.Env = append(cmd.Env, "CHILD_BACKEND=file", "CHILD_DIR="+dir, "CHILD_PROMPT=1", "CHILD_KEY=k")
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()

	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(seen(), "Passphrase of the pctoken-helper file store") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no prompt on the terminal; it shows %q", seen())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The prompt is out, so ReadPassword has turned echo off or is about to:
	// wait for that before typing.
	for {
		termios, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
		if err == nil && termios.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo never turned off")
		}
		time.Sleep(5 * time.Millisecond)
	}
	master.WriteString(passphrase + "\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v, stderr %s", err, stderr.Bytes())
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout got %q", stdout.Bytes())
	}
	var rep childReport
	if err := json.Unmarshal(stderr.Bytes(), &rep); err != nil || rep.Value != "from-the-store" {
		t.Fatalf("child report %s: %v", stderr.Bytes(), err)
	}
	time.Sleep(20 * time.Millisecond)
	if strings.Contains(seen(), passphrase) {
		t.Fatalf("the passphrase was echoed: %q", seen())
	}
}
