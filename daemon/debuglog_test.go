package daemon_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// TestDebugLogsRequests: at debug level (kaelixd -v) every control request
// is logged with its outcome, and a clean client exit is a debug line, not
// an info one.
func TestDebugLogsRequests(t *testing.T) {
	var buf testdaemon.Buffer
	f := startFile(t, baseTOML, func(c *daemon.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	f.write(t, strings.Replace(baseTOML, `level = "info"`, `level = "debug"`, 1))
	if _, err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	c.TopicInfo(ctx, "no.such")
	c.Topics(ctx)
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "msg=\"control request\" ") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := buf.String()
	if !strings.Contains(out, `msg="control request failed" `) || !strings.Contains(out, "type=info") || !strings.Contains(out, "code=not_found") {
		t.Errorf("no debug line for the failed info request:\n%s", out)
	}
	if !strings.Contains(out, `msg="control request" `) || !strings.Contains(out, "type=list") {
		t.Errorf("no debug line for the list request:\n%s", out)
	}
	if strings.Contains(out, "level=INFO msg=\"client process exited") {
		t.Errorf("a clean exit is logged at info:\n%s", out)
	}
}
