package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// kindWeights says how often each kind appears in the generated mix, per
// round of the pattern. Real traffic is dominated by one delivery event per
// recipient attempt; probes and blocklist checks come next; decisions and
// alerts are rare. Kinds not listed get weight 1.
var kindWeights = map[string]int{
	schemas.TypeDeliveryAttempted: 70,
	schemas.TypeProbeSent:         4,
	schemas.TypeProbeReceived:     4,
	schemas.TypeDNSBLChecked:      4,
	schemas.TypeComplaintReceived: 2,
	schemas.TypeBounceReceived:    2,
}

// mix is the repeating order in which event kinds are generated: event i
// has kind kinds[pattern[i%len(pattern)]]. Every kind appears in the first
// len(kinds) positions, so any run of at least that many events covers all
// kinds.
type mix struct {
	kinds   []schemas.Kind
	pattern []uint8
}

func newMix(kinds []schemas.Kind) mix {
	remaining := make([]int, len(kinds))
	total := 0
	for i, k := range kinds {
		w, ok := kindWeights[k.Type]
		if !ok {
			w = 1
		}
		remaining[i] = w
		total += w
	}
	// Take one of every kind that still has weight left, round after round,
	// so heavy kinds are spread out instead of arriving in one long run.
	pattern := make([]uint8, 0, total)
	for len(pattern) < total {
		for i := range kinds {
			if remaining[i] > 0 {
				pattern = append(pattern, uint8(i))
				remaining[i]--
			}
		}
	}
	return mix{kinds: kinds, pattern: pattern}
}

// kindIndex returns the index into m.kinds of event i.
func (m mix) kindIndex(i int) int { return int(m.pattern[i%len(m.pattern)]) }

// counts returns how many of n events each kind gets, indexed like m.kinds.
func (m mix) counts(n int) []int {
	out := make([]int, len(m.kinds))
	for i := range n {
		out[m.kindIndex(i)]++
	}
	return out
}

// generator builds the events of a run from one example event per kind.
// Event i is a copy of its kind's example with a new id, an event time
// derived from i and this harness as the source, so the baseline can build
// the very same rows again from the ids alone.
type generator struct {
	mix       mix
	templates []schemas.Event // indexed like mix.kinds
	source    schemas.Source
	// end is the time of the last event; event i happened (n-1-i) ms
	// earlier, so a run spreads over the past instead of one instant.
	end time.Time
	n   int
}

func newGenerator(examplesDir string, n int, now time.Time) (*generator, error) {
	kinds := schemas.Kinds()
	templates := make([]schemas.Event, len(kinds))
	for i, k := range kinds {
		ev, err := loadExample(examplesDir, k)
		if err != nil {
			return nil, err
		}
		templates[i] = ev
	}
	host, _ := os.Hostname()
	g := &generator{
		mix:       newMix(kinds),
		templates: templates,
		source:    schemas.Source{Worker: "loadtest", Host: host},
		end:       now.UTC().Truncate(time.Millisecond),
		n:         n,
	}
	// A template the contract rejects would make every run fail in the
	// sink's dead-letter path; say so before anything starts.
	for i := range kinds {
		ev, err := g.event(i)
		if err != nil {
			return nil, err
		}
		if err := schemas.Validate(ev); err != nil {
			return nil, fmt.Errorf("example %s: %w", kinds[i].Type, err)
		}
	}
	return g, nil
}

func loadExample(dir string, k schemas.Kind) (schemas.Event, error) {
	path := filepath.Join(dir, k.Type+".json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("example event for %s: %w", k.Type, err)
	}
	ev, err := schemas.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if got, _ := schemas.KindOf(ev); got.Type != k.Type {
		return nil, fmt.Errorf("%s: type %q, want %q", path, got.Type, k.Type)
	}
	return ev, nil
}

// event returns event i with a new id (schemas.Stamp). The copy is shallow:
// slices are shared with the template and must not be modified.
func (g *generator) event(i int) (schemas.Event, error) {
	k := g.mix.kinds[g.mix.kindIndex(i)]
	ev := k.New()
	reflect.ValueOf(ev).Elem().Set(reflect.ValueOf(g.templates[g.mix.kindIndex(i)]).Elem())
	at := g.end.Add(-time.Duration(g.n-1-i) * time.Millisecond)
	if err := schemas.Stamp(ev, g.source, at); err != nil {
		return nil, err
	}
	return ev, nil
}

// eventWithID rebuilds event i as it was published with the given id.
func (g *generator) eventWithID(i int, id string) (schemas.Event, error) {
	ev, err := g.event(i)
	if err != nil {
		return nil, err
	}
	ev.EventHeader().ID = id
	return ev, nil
}

// encode is the message body published for an event: its JSON document.
func encode(ev schemas.Event) ([]byte, error) { return json.Marshal(ev) }

// findModuleRoot walks up from dir to the directory holding mailmon's
// go.mod, where the example events and the mailmon command live.
func findModuleRoot(dir string) (string, error) {
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(data, "github.com/mailmon/mailmon") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the mailmon module: run the harness from the repository (go run ./loadtest)")
		}
		dir = parent
	}
}

func declaresModule(goMod []byte, path string) bool {
	for line := range strings.Lines(string(goMod)) {
		if strings.TrimSpace(line) == "module "+path {
			return true
		}
	}
	return false
}
