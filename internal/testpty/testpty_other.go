//go:build !linux

package testpty

import (
	"os"
	"os/exec"
	"testing"
)

// PTY is Linux-only here; elsewhere terminal tests skip.
type PTY struct{ Master, Slave *os.File }

// Open skips the test.
func Open(t testing.TB) *PTY {
	t.Skip("pseudo-terminal tests run on Linux")
	return nil
}

// Attach does nothing.
func (p *PTY) Attach(cmd *exec.Cmd, withStdin bool) {}
