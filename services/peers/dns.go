package peers

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// DNS is an authoritative DNS server on loopback (UDP and TCP on one
// port) for lab and test zones. A name it holds records for answers those
// of the asked type (none: NOERROR, no records); any other name is
// NXDOMAIN. Records can change while it runs.
type DNS struct {
	// Addr is the address it answers on, UDP and TCP.
	Addr string

	mu      sync.Mutex
	rrs     map[string][]dns.RR // lower-case FQDN → records
	servers []*dns.Server
	wg      sync.WaitGroup
}

// StartDNS serves on addr, a 127.0.0.1 address; port 0 picks a free one
// (the same for UDP and TCP).
func StartDNS(addr string) (*DNS, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dns on %s: %w", addr, err)
	}
	addr = pc.LocalAddr().String()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dns on %s: %w", addr, err)
	}
	d := &DNS{Addr: addr, rrs: map[string][]dns.RR{}}
	d.servers = []*dns.Server{{PacketConn: pc, Handler: d}, {Listener: ln, Handler: d}}
	for _, srv := range d.servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		d.wg.Go(func() { _ = srv.ActivateAndServe() })
		<-started
	}
	return d, nil
}

// Set replaces the records of one type at name; none removes them, and a
// name left without records answers NXDOMAIN.
func (d *DNS) Set(name string, rrtype uint16, rrs ...dns.RR) {
	name = strings.ToLower(dns.Fqdn(name))
	d.mu.Lock()
	defer d.mu.Unlock()
	kept := slices.DeleteFunc(d.rrs[name], func(rr dns.RR) bool { return rr.Header().Rrtype == rrtype })
	kept = append(kept, rrs...)
	if len(kept) == 0 {
		delete(d.rrs, name)
		return
	}
	d.rrs[name] = kept
}

// Add publishes records next to those already at their names.
func (d *DNS) Add(rrs ...dns.RR) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, rr := range rrs {
		name := strings.ToLower(dns.Fqdn(rr.Header().Name))
		d.rrs[name] = append(d.rrs[name], rr)
	}
}

// ServeDNS answers one query.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	d.mu.Lock()
	rrs, known := d.rrs[strings.ToLower(q.Name)]
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	d.mu.Unlock()
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

// Stop shuts both listeners down and waits for them.
func (d *DNS) Stop() {
	for _, srv := range d.servers {
		_ = srv.Shutdown()
	}
	d.wg.Wait()
}
