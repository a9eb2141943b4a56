// Command roundrobin times commands against each other on a busy machine: it runs them
// in turn, N rounds, and prints each one's median wall time and its ratio to the
// first's. Used for the measured steps in docs/performance.md:
//
//	go run ./integration/perf/testdata/roundrobin 400 /path/to/hello '/path/to/pctoken-helper get --scope graph --output token'
//
// Each command is split on spaces; stdout goes to /dev/null; a failing run stops it.
package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: roundrobin ROUNDS COMMAND...")
		os.Exit(2)
	}
	rounds, err := strconv.Atoi(os.Args[1])
	if err != nil || rounds < 1 {
		fmt.Fprintln(os.Stderr, "roundrobin: ROUNDS must be a positive number")
		os.Exit(2)
	}
	cmds := os.Args[2:]
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "roundrobin:", err)
		os.Exit(1)
	}
	walls := make([][]time.Duration, len(cmds))
	for range rounds {
		for j, c := range cmds {
			argv := strings.Fields(c)
			attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, devnull.Fd(), 2}}
			start := time.Now()
			pid, err := syscall.ForkExec(argv[0], argv, attr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "roundrobin: %s: %v\n", c, err)
				os.Exit(1)
			}
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
				fmt.Fprintf(os.Stderr, "roundrobin: %s: %v\n", c, err)
				os.Exit(1)
			}
			walls[j] = append(walls[j], time.Since(start))
			if ws.ExitStatus() != 0 {
				fmt.Fprintf(os.Stderr, "roundrobin: %s: exit %d\n", c, ws.ExitStatus())
				os.Exit(1)
			}
		}
	}
	base := median(walls[0])
	for j, c := range cmds {
		m := median(walls[j])
		fmt.Printf("%8.3f ms  %5.2fx  %s\n", float64(m)/1e6, float64(m)/float64(base), c)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
