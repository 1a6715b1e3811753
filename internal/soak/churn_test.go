package soak

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestChurnBrief runs the client churn soak (churn.go) small and short:
// 6 processes attaching and detaching about 120 times a minute over 4
// topics x 2 partitions for 8 s, killed and stopped at random. make soak
// runs it at full size for 10 minutes.
func TestChurnBrief(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	rep, err := RunChurn(context.Background(), ChurnOptions{Duration: 8 * time.Second, Procs: 6, Rate: 120, Topics: 4, Partitions: 2, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.WriteTable(&b)
	t.Log("\n" + b.String())
	if rep.Failed() {
		t.Errorf("%d invariants broken", len(rep.Failures))
	}
	if rep.Kills == 0 && rep.Stops == 0 {
		t.Error("no chaos action in 8 s")
	}
}
