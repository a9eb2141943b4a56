// Package testpty gives tests a real pseudo-terminal: the test holds the master, a
// child gets the slave as its controlling terminal, so /dev/tty opens in the child as
// it does for a person at a terminal. Tests of prompts need one: a prompt must reach
// the terminal, never stdout, and typed secrets must not echo.
package testpty

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// PTY is an open pseudo-terminal, closed when the test ends.
type PTY struct {
	Master *os.File
	Slave  *os.File
}

// Open opens a pseudo-terminal, skipping the test where there is none.
func Open(t testing.TB) *PTY {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	// Non-blocking, so that os.NewFile hands it to the poller and read deadlines work.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty slave: %v", err)
	}
	p := &PTY{Master: m, Slave: s}
	t.Cleanup(func() { p.Master.Close(); p.Slave.Close() })
	return p
}

// Attach starts cmd in a new session whose controlling terminal is the slave; stdin
// is the terminal too when withStdin, as for a person typing a command.
func (p *PTY) Attach(cmd *exec.Cmd, withStdin bool) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, p.Slave)
	ctty := 2 + len(cmd.ExtraFiles) // the child's fd of the slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: ctty}
	if withStdin {
		cmd.Stdin = p.Slave
	}
}
