//go:build !linux

package consumers

import (
	"os"
	"os/exec"
	"testing"
)

// pty is Linux-only here; elsewhere the terminal tests skip.
type pty struct{ master, slave *os.File }

func openPTY(t testing.TB) *pty {
	t.Skip("pseudo-terminal tests run on Linux")
	return nil
}

func (p *pty) attach(cmd *exec.Cmd, withStdin bool) {}
