package cli

import "syscall"

// hardenProcess keeps the secrets this process holds out of core dumps: no core file
// (RLIMIT_CORE 0), and not dumpable (PR_SET_DUMPABLE 0), which also keeps other
// processes of the same user from attaching with ptrace or reading its memory through
// /proc. It runs at the start of every command of the full path; the early cache-hit
// path (cli/hit) holds no secret and skips it. Failures are ignored: a process that
// cannot lower its own limits is no worse off than before.
func hardenProcess() {
	_ = syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: 0})
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0)
}
