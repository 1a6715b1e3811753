package numa_test

import (
	"fmt"
	"log"
	"os"

	"github.com/kaelix-io/kaelix/numa"
	"golang.org/x/sys/unix"
)

// Example loads a fixture tree (pass "/" for the live host), decides where
// a ring for threads on CPUs 4, 5 and 12 should live, and checks that node
// has free 2 MiB hugepages.
func Example() {
	topo, err := numa.Load("testdata/two-socket-four-node")
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range topo.Nodes {
		fmt.Printf("node %d: cpus %s, distances %v, %d GiB free\n",
			n.ID, numa.FormatCPUList(n.CPUs), n.Distances, n.MemFreeBytes>>30)
	}

	node, err := topo.NodeForCPUs([]int{4, 5, 12})
	if err != nil {
		log.Fatal(err)
	}
	free, path, err := topo.HugePagesFree(node, 2<<20)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("place on node %d: %d free 2 MiB pages (grow with %s)\n", node, free, path)
	// Output:
	// node 0: cpus 0-1,8-9, distances [10 12 20 22], 20 GiB free
	// node 1: cpus 2-3,10-11, distances [12 10 22 20], 30 GiB free
	// node 2: cpus 4-5,12-13, distances [20 22 10 12], 8 GiB free
	// node 3: cpus 6-7,14-15, distances [22 20 12 10], 15 GiB free
	// place on node 2: 100 free 2 MiB pages (grow with testdata/two-socket-four-node/sys/devices/system/node/node2/hugepages/hugepages-2048kB/nr_hugepages)
}

// ExampleBind maps memory, binds it to the node of the calling CPU before
// first touch, touches it and verifies the placement. (Not run: the output
// depends on the host.)
func ExampleBind() {
	topo, err := numa.Load("/")
	if err != nil {
		log.Fatal(err)
	}
	restore, err := numa.PinThread(0)
	if err != nil {
		log.Fatal(err)
	}
	defer restore()
	node, err := numa.NodeOfCaller(topo)
	if err != nil {
		log.Fatal(err)
	}

	size := 64 * os.Getpagesize()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		log.Fatal(err)
	}
	defer unix.Munmap(b)
	if err := numa.Bind(b, node); err != nil {
		log.Fatal(err)
	}
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 0 // first touch: allocated on node
	}
	got, pages, err := numa.Locate(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bound to node %d, pages on node %d: %v\n", node, got, pages)
}

// ExampleTopology_NodeForCPUs shows the tie-breaks of the placement rule.
func ExampleTopology_NodeForCPUs() {
	topo, err := numa.Load("testdata/two-socket-four-node")
	if err != nil {
		log.Fatal(err)
	}
	for _, cpus := range [][]int{
		{2, 3, 10, 0},     // node 1 holds 3 of 4
		{4, 12, 6, 14, 2}, // nodes 2 and 3 hold 2 each; node 3 is closer to CPU 2's node 1
		{0, 2},            // full tie: lowest id
		{1, 99},           // CPU 99 does not exist
	} {
		node, err := topo.NodeForCPUs(cpus)
		fmt.Println(cpus, "->", node, err)
	}
	// Output:
	// [2 3 10 0] -> 1 <nil>
	// [4 12 6 14 2] -> 3 <nil>
	// [0 2] -> 0 <nil>
	// [1 99] -> -1 numa: place: cpu 99: no such CPU (cpus: 0-15)
}
