package main

import (
	"errors"
	"fmt"

	"github.com/kaelix-io/kaelix/bridge"
)

// CheckConfigCmd validates a configuration file.
type CheckConfigCmd struct {
	File string `arg:"" help:"The TOML configuration file." type:"existingfile"`
}

// Run prints every error of the file; exit 2 if there is any.
func (c *CheckConfigCmd) Run(g *Globals) error {
	cfg, err := bridge.Load(c.File)
	if err != nil {
		return &codedError{exitUsage, err}
	}
	ruleErrs, err := cfg.Validate()
	errs := []error{err}
	errs = append(errs, ruleErrs...)
	if all := errors.Join(errs...); all != nil {
		return &codedError{exitUsage, fmt.Errorf("%s:\n%w", c.File, all)}
	}
	fmt.Fprintf(g.stdout, "%s: ok (%d rules)\n", c.File, len(cfg.Rules))
	return nil
}
