package consumers

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal: the test holds the master, a child gets the slave as
// its controlling terminal, so that /dev/tty opens in the child as it does for a
// person at a terminal.
type pty struct {
	master *os.File
	slave  *os.File
}

func openPTY(t testing.TB) *pty {
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
	p := &pty{master: m, slave: s}
	t.Cleanup(func() { p.master.Close(); p.slave.Close() })
	return p
}

// attach starts cmd in a new session whose controlling terminal is the slave;
// stdin is the terminal too when withStdin, as for a person typing a command.
func (p *pty) attach(cmd *exec.Cmd, withStdin bool) {
	cmd.ExtraFiles = []*os.File{p.slave} // fd 3 in the child
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 3}
	if withStdin {
		cmd.Stdin = p.slave
	}
}
