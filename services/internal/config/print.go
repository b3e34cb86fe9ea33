package config

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Print writes cfg as YAML: the effective configuration after defaults,
// the file and the environment, in the same shape the file is written in.
// Secrets print as "[REDACTED]" (or "" when unset), and so do credentials
// inside any URL (RedactURLs: user info, token parameters), wherever it
// is; durations and sizes print in their human form, so the output can be
// pasted into a ticket.
func Print(w io.Writer, cfg any) error {
	var doc yaml.Node
	if err := doc.Encode(cfg); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	redactURLNodes(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	return nil
}

// redactURLNodes applies RedactURLs to every string scalar under n: a URL
// with credentials can sit in any string key (nats.url, a webhook's url),
// typed or not as a Secret.
func redactURLNodes(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!str" || n.Tag == "") {
		n.Value = RedactURLs(n.Value)
	}
	for _, c := range n.Content {
		redactURLNodes(c)
	}
}
