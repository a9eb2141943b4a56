package cli

import (
	"syscall"
	"testing"
)

func TestHardenProcess(t *testing.T) {
	hardenProcess()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &lim); err != nil || lim.Cur != 0 || lim.Max != 0 {
		t.Fatalf("RLIMIT_CORE = %+v (%v), want 0", lim, err)
	}
	const prGetDumpable = 3
	if d, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetDumpable, 0, 0); errno != 0 || d != 0 {
		t.Fatalf("dumpable = %d (%v), want 0", d, errno)
	}
}
