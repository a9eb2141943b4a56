package main

import "syscall"

// sysProcAttr ties the child's life to the spawner's: when a benchmark gives up on a
// run and kills the spawner, the child goes too.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
