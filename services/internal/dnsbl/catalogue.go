package dnsbl

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed zones.yaml
var zonesYAML []byte

// Catalogue is a set of zone descriptions.
type Catalogue struct {
	Zones []Zone `yaml:"zones"`
}

// Default returns the built-in catalogue (zones.yaml). A test proves it
// parses, so an error here is a build defect.
func Default() Catalogue {
	c, err := ParseCatalogue(zonesYAML)
	if err != nil {
		panic(err)
	}
	return c
}

// ParseCatalogue reads a catalogue document strictly (unknown keys are
// errors) and validates every zone.
func ParseCatalogue(data []byte) (Catalogue, error) {
	var c Catalogue
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Catalogue{}, fmt.Errorf("dnsbl: catalogue: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Catalogue{}, err
	}
	return c, nil
}

// Validate checks every zone and that no name appears twice.
func (c Catalogue) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, z := range c.Zones {
		if err := z.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("zones[%d] %s: %w", i, z.Name, err))
		}
		if n := lower(z.Name); seen[n] {
			errs = append(errs, fmt.Errorf("zones[%d]: %s declared twice", i, z.Name))
		} else {
			seen[n] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dnsbl: catalogue: %w", err)
	}
	return nil
}

// Lookup returns the zone called name.
func (c Catalogue) Lookup(name string) (Zone, bool) {
	i := slices.IndexFunc(c.Zones, func(z Zone) bool { return lower(z.Name) == lower(name) })
	if i < 0 {
		return Zone{}, false
	}
	return c.Zones[i], true
}

// With returns c plus extra: an extra zone replaces the built-in one of the
// same name, the others are appended in order.
func (c Catalogue) With(extra []Zone) Catalogue {
	out := Catalogue{Zones: slices.Clone(c.Zones)}
	for _, z := range extra {
		i := slices.IndexFunc(out.Zones, func(o Zone) bool { return lower(o.Name) == lower(z.Name) })
		if i >= 0 {
			out.Zones[i] = z
		} else {
			out.Zones = append(out.Zones, z)
		}
	}
	return out
}

// Select picks the zones to sweep: those named, in order, or every default
// zone when names is empty. Unknown names are an error. A retired zone is
// kept if named (it is the operator's choice) but gives a warning, and so
// does a name given twice.
func (c Catalogue) Select(names []string) (zones []Zone, warnings []string, err error) {
	if len(names) == 0 {
		for _, z := range c.Zones {
			if z.Default && z.Retired == "" {
				zones = append(zones, z)
			}
		}
		return zones, nil, nil
	}
	var unknown []string
	seen := map[string]bool{}
	for _, n := range names {
		z, ok := c.Lookup(n)
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		if seen[lower(z.Name)] {
			warnings = append(warnings, fmt.Sprintf("zone %s is named twice; it is swept once", z.Name))
			continue
		}
		seen[lower(z.Name)] = true
		if z.Retired != "" {
			warnings = append(warnings, fmt.Sprintf("zone %s (%s) is retired: %s", z.Name, z.ListName(), z.Retired))
		}
		zones = append(zones, z)
	}
	if len(unknown) > 0 {
		known := make([]string, len(c.Zones))
		for i, z := range c.Zones {
			known[i] = z.Name
		}
		return nil, nil, fmt.Errorf("dnsbl: unknown zone(s) %s; the catalogue has %s (add others as custom zones)",
			strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return zones, warnings, nil
}

// publicResolvers are the well-known open resolvers that Spamhaus and
// other registered-resolver zones refuse (Spamhaus answers 127.255.255.254).
var publicResolvers = func() map[netip.Addr]string {
	m := map[netip.Addr]string{}
	for name, addrs := range map[string][]string{
		"Google Public DNS": {"8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"},
		"Cloudflare":        {"1.1.1.1", "1.0.0.1", "2606:4700:4700::1111", "2606:4700:4700::1001"},
		"Quad9":             {"9.9.9.9", "149.112.112.112", "2620:fe::fe", "2620:fe::9"},
		"OpenDNS":           {"208.67.222.222", "208.67.220.220", "2620:119:35::35", "2620:119:53::53"},
		"AdGuard DNS":       {"94.140.14.14", "94.140.15.15"},
		"Level3":            {"4.2.2.1", "4.2.2.2"},
	} {
		for _, a := range addrs {
			m[netip.MustParseAddr(a)] = name
		}
	}
	return m
}()

// PublicResolver names the operator of a well-known public resolver, or
// returns "" for any other address.
func PublicResolver(addr netip.Addr) string { return publicResolvers[addr.Unmap()] }
