package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEQuotesExample keeps the README's client quick start a faithful
// quote of the runnable client/example_test.go.
func TestREADMEQuotesExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../client/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	// The quote runs from the helper that embeds the daemon to the end of
	// Example.
	s := string(example)
	i := strings.Index(s, "// exampleClient runs")
	j := strings.Index(s, "\nfunc Example() {")
	if i < 0 || j < i {
		t.Fatal("client/example_test.go: no \"// exampleClient runs\" comment before func Example")
	}
	k := strings.Index(s[j:], "\n}\n")
	if k < 0 {
		t.Fatal("client/example_test.go: func Example has no end")
	}
	body := s[i : j+k+2]
	if !strings.Contains(string(readme), "```go\n"+body+"\n```") {
		t.Error("README.md's client quick start is not client/example_test.go's Example, verbatim: copy it again")
	}
}
