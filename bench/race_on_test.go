//go:build race

package bench

// raceEnabled: under -race the tests leave shmipc-go out. shmipc-go hands
// a stream's buffers between its epoll goroutine and the caller through
// the kernel (eventfd, the UDS), which the race detector cannot see, so it
// reports races inside shmipc-go's own code (buffer_slice.go, stream.go)
// when a session closes. The harness's own code is race-tested with every
// other transport.
const raceEnabled = true
