package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestReadLinesSkipsLongLines: a line longer than the topic's max message
// is reported and skipped; the lines around it are still published, with
// "\n" and "\r\n" endings stripped, and the stream ends in an invalid-input
// error that counts the skipped lines.
func TestReadLinesSkipsLongLines(t *testing.T) {
	in := "ok\r\n" + strings.Repeat("y", 100000) + "\nafter\n\nlast"
	out := make(chan []byte, 10)
	errc := make(chan error, 1)
	var warn bytes.Buffer
	readLines(context.Background(), strings.NewReader(in), 1024, out, errc, &warn)
	var got []string
	for m := range out {
		got = append(got, string(m))
	}
	if want := []string{"ok", "after", "", "last"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("published %q, want %q", got, want)
	}
	if err := <-errc; !errors.Is(err, errInvalidInput) || !strings.Contains(err.Error(), "1 line(s)") {
		t.Fatalf("err = %v, want an invalid-input error counting 1 skipped line", err)
	}
	if !strings.Contains(warn.String(), "line 2 skipped") {
		t.Fatalf("warning %q does not name line 2", warn.String())
	}
}
