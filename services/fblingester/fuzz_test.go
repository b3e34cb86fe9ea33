package fblingester

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// analyser builds an ingester that can analyse messages without NATS: one
// operator is configured, but its key lookup always fails, so no input can
// be trusted by a signature.
func analyser(tb testing.TB) *Ingester {
	tb.Helper()
	cfg := testConfig()
	cfg.Trust.Operators = []Operator{{DKIMDomain: "fbl.provider.test"}}
	cfg.Trace.DKIMDomains = map[string]string{"sender.example": "acme"}
	cfg.Trace.MessageIDDomains = map[string]string{"sender.example": "acme"}
	m, err := newMetrics(nil)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	in := &Ingester{cfg: cfg, m: m, providers: newProviders(nil), source: schemas.Source{Worker: WorkerName, Host: "fuzz"},
		now: func() time.Time { return now }}
	in.tracer = newTracer(cfg.Trace, worker.Tracking{Keyring: &testRing}, in.now)
	in.trust = newTrustPolicy(cfg.Trust)
	in.trust.lookup = func(context.Context, string) ([]string, error) {
		return nil, &net.DNSError{Err: "no such key", IsNotFound: true}
	}
	return in
}

// FuzzAnalyse feeds hostile messages to the whole analysis (ARF, DSN,
// DKIM verification, tracing, ids): it must not panic, must give the same
// ids for the same bytes, and must never trust a report that came through
// an untrusted input without a verifiable operator signature.
func FuzzAnalyse(f *testing.F) {
	f.Add(arfReport("f1", "abuse", "192.0.2.10", "v1.acme.192.0.2.10.m1.1.x"))
	f.Add(arfReport("f2", "not-spam", "2001:db8::1", ""))
	f.Add(arfReport("f3", "auth-failure", "192.0.2.1", ""))
	f.Add(dsnBounce("b1", ""))
	f.Add(reportSpec{reportID: "r1", sourceIP: "192.0.2.10", origID: "o@sender.example", rcpt: "a@b", headers: true,
		origDKIM: "DKIM-Signature: v=1; a=ed25519-sha256; d=sender.example; s=s; h=from; bh=AA; b=AA"}.build())
	f.Add(append([]byte("DKIM-Signature: v=1; a=ed25519-sha256; d=fbl.provider.test; s=s; h=from:to; bh=AA; b=AA\r\n"),
		reportSpec{reportID: "r2", sourceIP: "192.0.2.10", origFull: original("x@sender.example", "a@b"), rcpt: "a@b"}.build()...))
	f.Add([]byte("Subject: hi\r\n\r\nhello\r\n"))
	xml := dmarcXML("google.com", "f-1", "sender.example", testRows)
	f.Add(googleMail("f4", "application/gzip", "r.xml.gz", gzipped(f, xml)))
	f.Add(xml)
	f.Add(zipped(f, "r.xml", xml))
	f.Add(tlsrptJSON(nil, "Google Inc.", "f-5", "sender.example", "192.0.2.10"))
	in := analyser(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		o := origin{via: schemas.ReceivedViaSMTP}
		res, err := in.analyse(ctx, raw, o)
		if err != nil {
			if !errors.Is(err, errDNSTemporary) {
				t.Fatalf("analyse: %v", err)
			}
			return
		}
		again, _ := in.analyse(ctx, raw, o)
		if len(again.events) != len(res.events) {
			t.Fatalf("%d events, then %d", len(res.events), len(again.events))
		}
		for i, ev := range res.events {
			if ev.EventHeader().ID != again.events[i].EventHeader().ID {
				t.Fatalf("event %d: id %s, then %s", i, ev.EventHeader().ID, again.events[i].EventHeader().ID)
			}
			if c, ok := ev.(*schemas.ComplaintReceived); ok && (c.Trusted || c.Trust != schemas.TrustUnverified) {
				t.Fatalf("complaint trusted (%s) without a verifiable operator signature", c.Trust)
			}
		}
		reason := in.unstorable(res.events) // must not panic on whatever was built
		if (res.outcome == outcomeDMARC || res.outcome == outcomeTLSRPT) && reason != "" {
			t.Fatalf("a report read makes an event that breaks the contract: %s", reason)
		}
	})
}
