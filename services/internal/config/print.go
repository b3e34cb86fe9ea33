package config

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Print writes cfg as YAML: the effective configuration after defaults,
// the file and the environment, in the same shape the file is written in.
// Secrets print as "[REDACTED]" (or "" when unset), durations and sizes in
// their human form, so the output can be pasted into a ticket.
func Print(w io.Writer, cfg any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	return nil
}
