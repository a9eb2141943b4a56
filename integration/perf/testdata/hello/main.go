// Command hello is the baseline of the process benchmarks: the smallest Go program
// that prints a line, built static (CGO_ENABLED=0) like the helper.
package main

import "fmt"

func main() { fmt.Println("hello, world") }
