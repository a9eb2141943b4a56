// Command spawn runs one program and reports, on file descriptor 3, its wall time from
// fork to exit in nanoseconds and its peak resident set in kilobytes:
//
//	spawn PROGRAM [ARG...]   ->   fd 3: "<wall ns> <maxrss KB>\n"; exit status of PROGRAM
//
// It exists because Linux charges a child, in its peak RSS, with the resident set of
// the memory it was exec'd from: Go starts children with vfork, so a child of the
// benchmark process (tens of megabytes) would report at least that. This program is
// small, so what it reports is the child's own peak (above a floor of about 2 MB, its
// own resident set).
package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: spawn PROGRAM [ARG...]")
		os.Exit(2)
	}
	report := os.NewFile(3, "report")
	// Linux sends the parent-death signal when the thread that forked ends: keep to one.
	runtime.LockOSThread()
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: sysProcAttr()}
	start := time.Now()
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], attr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "spawn:", err)
		os.Exit(127)
	}
	var (
		ws syscall.WaitStatus
		ru syscall.Rusage
	)
	for {
		_, err = syscall.Wait4(pid, &ws, 0, &ru)
		if err != syscall.EINTR {
			break
		}
	}
	wall := time.Since(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "spawn: wait:", err)
		os.Exit(127)
	}
	fmt.Fprintf(report, "%d %d\n", wall.Nanoseconds(), ru.Maxrss)
	if ws.Signaled() {
		os.Exit(128 + int(ws.Signal()))
	}
	os.Exit(ws.ExitStatus())
}
