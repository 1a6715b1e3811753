package processor

import (
	"errors"
	"fmt"
)

var (
	// ErrNoPermission: a plugin asked its Context for something its
	// Permissions do not grant (Config without CanReadConfig, Metrics
	// without CanWriteMetrics). Grant the permission in the plugin's
	// stage declaration, or stop asking.
	ErrNoPermission = errors.New("processor: permission not granted")

	// ErrDuplicate: Registry.Register was given a name already registered.
	// Stage names are unique within a registry (they name metrics and
	// errors).
	ErrDuplicate = errors.New("processor: duplicate stage name")

	// ErrUnknownRoute: a stage returned Route(topic) for a topic the
	// pipeline has no publisher for. Declare it in PipelineConfig.Outputs
	// or PipelineConfig.RouteTopics. Counted as a failure of the record.
	ErrUnknownRoute = errors.New("processor: route to an undeclared topic")

	// ErrNotInitialized: Process or a Pipeline was used with a Registry
	// that InitAll has not (successfully) initialised.
	ErrNotInitialized = errors.New("processor: registry not initialised")

	// ErrBadConfig: a plugin's configuration does not decode, names an
	// unknown key or holds a value out of range. Wrapped with the key.
	ErrBadConfig = errors.New("processor: bad plugin configuration")
)

// PluginError names the stage (and its plugin) an error came from: Init,
// Close and configuration failures are wrapped in one, so that the
// operator reads which declaration to fix.
type PluginError struct {
	Stage  string // the name the plugin was registered under
	Plugin string // Plugin.Name()
	Op     string // "init", "close", "config"
	Err    error
}

func (e *PluginError) Error() string {
	if e.Plugin != "" && e.Plugin != e.Stage {
		return fmt.Sprintf("processor: stage %q (plugin %s): %s: %v", e.Stage, e.Plugin, e.Op, e.Err)
	}
	return fmt.Sprintf("processor: stage %q: %s: %v", e.Stage, e.Op, e.Err)
}

func (e *PluginError) Unwrap() error { return e.Err }
