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
	s := string(example)
	i := strings.Index(s, "// Example runs")
	if i < 0 {
		t.Fatal("client/example_test.go: no \"// Example runs\" comment")
	}
	body := strings.TrimRight(s[i:], "\n")
	if !strings.Contains(string(readme), "```go\n"+body+"\n```") {
		t.Error("README.md's client quick start is not client/example_test.go's Example, verbatim: copy it again")
	}
}
