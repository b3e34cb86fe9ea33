// Package systemd holds mailmon's systemd units and reads them back, so
// tests check what an installation runs.
//
// One unit per worker (mailmon-<worker>.service), except the
// complaint-evaluator, a template whose instance is its partition
// (mailmon-complaint-evaluator@<partition>.service). Each runs
// `/usr/bin/mailmon <worker> -config /etc/mailmon/mailmon.yaml` with its own
// -http.addr, as its own dynamic user, hardened, with its secrets as
// credentials; mailmon.target groups the workers a host runs, the drop-in
// mailmon-.service.d/credentials.conf gives every unit the secrets the
// shared config references, and nats-server.service runs one node of the
// NATS cluster of deploy/cluster. deploy/README.md says what runs where.
//
// Separate units, not one template for every worker, because the workers
// differ in what the hardening must leave them: the fbl-ingester alone
// binds port 25, the policy service alone keeps state, the log tailer
// alone reads /var/log, and each has its own NATS password, memory bound
// and metrics port. The evaluator's copies differ only by partition, which
// is what a template instance is for.
package systemd

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

//go:embed *.service *.target mailmon-.service.d/*.conf
var files embed.FS

// FS is the folder as installed under /etc/systemd/system: the units and
// the drop-in directory.
func FS() fs.FS { return files }

// UnitNames lists the unit files (not the drop-ins), sorted.
func UnitNames() []string {
	var names []string
	entries, _ := files.ReadDir(".")
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// Entry is one Key=Value line of a unit file.
type Entry struct {
	Section, Key, Value string
	Line                int
}

// Unit is a unit file's entries in order.
type Unit struct {
	Name    string
	Entries []Entry
}

// Values returns every value of key in section, in order (a key may repeat,
// as ExecStart= or LoadCredential= do; an empty value resets the list in
// systemd and is returned as "").
func (u Unit) Values(section, key string) []string {
	var out []string
	for _, e := range u.Entries {
		if e.Section == section && e.Key == key {
			out = append(out, e.Value)
		}
	}
	return out
}

// Value returns the last value of key in section, and whether it is set.
func (u Unit) Value(section, key string) (string, bool) {
	v := u.Values(section, key)
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// Load parses the embedded file name (a unit, or a drop-in path such as
// "mailmon-.service.d/credentials.conf").
func Load(name string) (Unit, error) {
	data, err := files.ReadFile(name)
	if err != nil {
		return Unit{}, err
	}
	return Parse(name, data)
}

// Parse reads a unit file: [Section] headers, Key=Value lines, comments
// (# and ;) and blank lines. Line continuations are refused: the units here
// do not use them, and a parser that skipped them would check less than
// systemd reads.
func Parse(name string, data []byte) (Unit, error) {
	u := Unit{Name: name}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasSuffix(line, `\`):
			return Unit{}, fmt.Errorf("%s:%d: line continuation", name, n)
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return Unit{}, fmt.Errorf("%s:%d: bad section header %q", name, n, line)
			}
			section = line[1 : len(line)-1]
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return Unit{}, fmt.Errorf("%s:%d: not Key=Value in a section: %q", name, n, line)
			}
			u.Entries = append(u.Entries, Entry{Section: section, Key: strings.TrimSpace(key), Value: strings.TrimSpace(value), Line: n})
		}
	}
	return u, sc.Err()
}
