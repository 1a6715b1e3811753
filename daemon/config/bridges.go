package config

import (
	"fmt"
	"strings"
)

// Bridge is one [[bridges]] entry: a kaelix-bridge process kaelixd keeps
// running (see package supervisor) with `kaelix-bridge run --config
// Config --socket <kaelixd's socket>`. Live: a reload starts added
// bridges, stops removed ones and restarts changed ones.
type Bridge struct {
	// Name identifies it (status, logs); unique. Letters, digits, '-',
	// '_' and '.'.
	Name string `toml:"name"`
	// Config is the bridge's TOML file (required).
	Config string `toml:"config"`
	// Binary is the kaelix-bridge executable; "" means kaelix-bridge
	// beside kaelixd's own executable, else on $PATH.
	Binary string `toml:"binary"`
}

// validateBridges reports bad [[bridges]] entries through bad.
func (c Config) validateBridges(bad func(key, format string, args ...any)) {
	seen := map[string]int{}
	for i, b := range c.Bridges {
		key := fmt.Sprintf("bridges[%d]", i)
		switch {
		case b.Name == "" || strings.Trim(b.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "":
			bad(key+".name", "%q: want letters, digits, '-', '_' or '.'", b.Name)
		default:
			if j, dup := seen[b.Name]; dup {
				bad(key+".name", "%q is also declared by bridges[%d]", b.Name, j)
			}
			seen[b.Name] = i
		}
		if b.Config == "" {
			bad(key+".config", "empty: the bridge's TOML file is required")
		}
	}
}
