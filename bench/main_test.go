package bench

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the harness's child process.
func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(ChildMain())
	}
	os.Exit(m.Run())
}
