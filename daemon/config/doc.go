// Package config is kaelixd's configuration: the Config type with its
// sections ([daemon], [shm], [network], [runtime], [telemetry],
// [security], [[topics]], [[bridges]], [[processors]]), Default and
// Validate, the Loader that merges its
// sources, Diff for reloads, and Check for the host it runs on.
//
// # Sources
//
// Highest first: command-line flags (Loader.Flags), environment variables
// (KAELIX_ plus the key path upper-cased with dots as underscores:
// KAELIX_NETWORK_PORT, KAELIX_RUNTIME_NUMA_AWARE), the TOML file, and
// Default(). Loaded.Sources says, for every key, which layer set it and
// where ("kaelixd.toml:12", "KAELIX_NETWORK_PORT", "--port"). Arrays of
// tables (topics, security.access, bridges, processors) come from the
// file only.
//
// # Errors
//
// Load and Validate report every problem at once as Errors: each entry
// names its key path and, where known, the file line. Unknown keys in the
// file are errors; unknown KAELIX_ variables are warnings (other tools
// share the prefix). A duration is a string with a unit ("7s", "250ms")
// in every source: a bare number is an error naming the fix (the TOML
// decoder would read evict_stalled_after = 7 as 7 ns); from the
// environment or a flag a bare "0" is accepted.
//
// # Reload
//
// Diff compares two configurations key by key and splits the changes into
// those a running daemon applies (KeyInfo.Live: access rules, log level,
// metrics toggles, wait strategy, health thresholds, topics added) and the
// rest, which make the reload refused as a whole (*NotLiveError).
//
// # Concurrency
//
// Everything here is plain values and functions safe for concurrent use.
package config
