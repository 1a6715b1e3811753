package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestLogOneLine: error values with newlines (errors.Join) stay on one
// line, and config values are logged without config show's quotes (no
// "\"info\"" in JSON).
func TestLogOneLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: oneLine}))
	log.Error("boom", "err", errors.Join(errors.New("first"), errors.New("second")), "old", unquoted(`"info"`), "new", unquoted("7"))
	line := strings.TrimSuffix(buf.String(), "\n")
	if strings.Contains(line, "\n") || strings.Contains(line, `\n`) || !strings.Contains(line, `"err":"first; second"`) {
		t.Errorf("multi-line error: %s", line)
	}
	if !strings.Contains(line, `"old":"info"`) || !strings.Contains(line, `"new":"7"`) {
		t.Errorf("config values: %s", line)
	}
}
