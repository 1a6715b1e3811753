// Command alloc is TestMemoryLimit's child, built without -race (the race
// detector's shadow memory would count against the limit under test): it
// waits for the start gate, then allocates and touches memory in 1 MiB
// steps, printing its total every 16 MiB, until the limit stops it.
package main

import (
	"fmt"
	"os"

	"github.com/kaelix-io/kaelix/internal/supervise"
)

func main() {
	if err := supervise.WaitGate(); err != nil {
		fmt.Println("gate:", err)
		os.Exit(1)
	}
	fmt.Println("ready", os.Getpid())
	var keep [][]byte
	for {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		keep = append(keep, b)
		if len(keep)%16 == 0 {
			fmt.Println("allocated MiB", len(keep))
		}
	}
}
