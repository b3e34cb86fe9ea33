package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// Definition registers one worker: its kebab-case name (also its
// subcommand), what it needs from the runtime, and how to build it from the
// config file.
type Definition struct {
	Name    string
	Summary string
	// NeedsClickHouse makes the runtime connect to ClickHouse and apply the
	// migrations before the worker starts.
	NeedsClickHouse bool
	Build           func(cfg Config, s worker.Settings) (worker.Runner, error)
}

// definitions lists every worker in this binary, in start order. Each
// worker issue adds its entry here.
var definitions = []Definition{
	{
		Name:            clickhousesink.WorkerName,
		Summary:         "store every event stream in ClickHouse (batched, at-least-once, deduplicated by id)",
		NeedsClickHouse: true,
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return clickhousesink.New(cfg.ClickHouseSink, cfg.ClickHouse, s)
		},
	},
}

// Workers returns the registered workers.
func Workers() []Definition { return slices.Clone(definitions) }

// SelectWorkers resolves a -workers flag value: "all" or a comma-separated
// list of names. Unknown names are an error that lists the known ones.
func SelectWorkers(spec string) ([]Definition, error) {
	if spec == "all" || spec == "" {
		return Workers(), nil
	}
	var out []Definition
	var unknown []string
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(definitions, func(d Definition) bool { return d.Name == name })
		if i < 0 {
			unknown = append(unknown, name)
			continue
		}
		if !slices.ContainsFunc(out, func(d Definition) bool { return d.Name == name }) {
			out = append(out, definitions[i])
		}
	}
	if len(unknown) > 0 {
		known := make([]string, 0, len(definitions))
		for _, d := range definitions {
			known = append(known, d.Name)
		}
		return nil, fmt.Errorf("unknown worker(s) %s; known: all, %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}
