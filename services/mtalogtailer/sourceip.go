package mtalogtailer

import (
	"net/netip"
	"strings"
)

// sourceIPs resolves the sending IP of a delivery from where it was logged.
type sourceIPs struct {
	cfg SourceIPConfig
}

// lookup returns the source IP for a line from host, logged by program
// ("instance/…/service") with the delivery agent or transport agent, and
// the source of a verified tracking header (may be "").
func (s sourceIPs) lookup(host, program, agent, trackedSource string) string {
	instance, _, _ := strings.Cut(program, "/")
	service := program[strings.LastIndexByte(program, '/')+1:]
	// A master.cf service with -o syslog_name=postfix/<service> (as
	// Postfix's own master.cf names relay and submission) logs as
	// "postfix/<service>/smtp": the syslog name's last part is the middle
	// one, the process name the last.
	named := service
	if syslogName, _, ok := cutLast(program, '/'); ok && strings.IndexByte(syslogName, '/') >= 0 {
		_, named, _ = cutLast(syslogName, '/')
	}
	for _, r := range s.cfg.Rules {
		if (r.Host == "" || strings.EqualFold(r.Host, host)) &&
			(r.Instance == "" || r.Instance == instance) &&
			(r.Transport == "" || r.Transport == service || r.Transport == agent || r.Transport == named) {
			return r.SourceIP
		}
	}
	if s.cfg.FromName {
		for _, name := range []string{instance, named, service, agent} {
			if ip := ipInName(name); ip != "" {
				return ip
			}
		}
	}
	if s.cfg.FromTracking {
		if a, err := netip.ParseAddr(trackedSource); err == nil {
			return a.Unmap().String()
		}
	}
	return s.cfg.Default
}

// ipInName finds an IP address written after the last '-' or '_' of a
// syslog name ("postfix-10.1.2.3", "smtp_10.1.2.3", "out-2001:db8::25").
func ipInName(name string) string {
	i := strings.LastIndexAny(name, "-_")
	if i < 0 {
		return ""
	}
	a, err := netip.ParseAddr(name[i+1:])
	if err != nil {
		return ""
	}
	return a.Unmap().String()
}

// cutLast splits s around its last sep.
func cutLast(s string, sep byte) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}
