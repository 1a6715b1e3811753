package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// baseHandler is Config.Logger's handler, or one built from
// [telemetry.logging] (target stderr, stdout or a file appended to; format
// text or json), before the live level filter.
func baseHandler(cfg Config) (slog.Handler, error) {
	if cfg.Logger != nil {
		return cfg.Logger.Handler(), nil
	}
	lg := cfg.Telemetry.Logging
	var w io.Writer
	switch lg.Target {
	case "stderr", "":
		w = os.Stderr
	case "stdout":
		w = os.Stdout
	default:
		f, err := os.OpenFile(lg.Target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("%w: telemetry.logging.target: %w", ErrConfig, err)
		}
		w = f // lives as long as the process: the daemon logs until it exits
	}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: oneLine} // the levelHandler filters
	if lg.Format == "json" {
		return slog.NewJSONHandler(w, opts), nil
	}
	return slog.NewTextHandler(w, opts), nil
}

// oneLine keeps every record on one line: an error (or string) value
// holding newlines (errors.Join, multi-line validation reports) has them
// replaced by "; ", so a line-oriented log reader sees one record.
func oneLine(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value.Any().(type) {
	case error:
		if s := v.Error(); strings.ContainsAny(s, "\r\n") {
			return slog.String(a.Key, flatten(s))
		}
	case string:
		if strings.ContainsAny(v, "\r\n") {
			return slog.String(a.Key, flatten(v))
		}
	}
	return a
}

func flatten(s string) string {
	s = strings.ReplaceAll(strings.TrimRight(s, "\r\n"), "\r\n", "\n")
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", "; "), "\r", "; ")
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if l.UnmarshalText([]byte(s)) != nil {
		return slog.LevelInfo
	}
	return l
}

// levelHandler filters records below a level that reloads may change.
type levelHandler struct {
	h  slog.Handler
	lv *slog.LevelVar
}

func (l *levelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= l.lv.Level() && l.h.Enabled(ctx, level)
}

func (l *levelHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }

func (l *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{h: l.h.WithAttrs(as), lv: l.lv}
}

func (l *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{h: l.h.WithGroup(name), lv: l.lv}
}

// Logger returns the daemon's logger: telemetry.logging's format and
// destination, its level following reloads. For the code kaelixd runs
// beside the daemon (bridge supervision). Safe for concurrent use.
func (d *Daemon) Logger() *slog.Logger { return d.log }
