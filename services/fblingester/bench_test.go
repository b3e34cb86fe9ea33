package fblingester

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/dkimtest"
)

// BenchmarkAnalyseReport measures what checking a report's origin costs:
// the same report unsigned (no key lookup, untrusted) and signed by the
// operator (one in-process key lookup and an Ed25519 verification over
// the report).
func BenchmarkAnalyseReport(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	in := analyser(b)
	key := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	in.trust.lookup = func(context.Context, string) ([]string, error) { return []string{key}, nil }
	report := reportSpec{reportID: "bench", sourceIP: "192.0.2.10", origID: "o@sender.example", rcpt: "a@provider.test", headers: true}.build()
	signed := (&dkimtest.Signer{Domain: "fbl.provider.test", Selector: "s", Key: priv}).Sign(b, report)
	for _, c := range []struct {
		name string
		msg  []byte
		want bool
	}{{"unsigned", report, false}, {"operator-signed", signed, true}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.msg)))
			for b.Loop() {
				res, err := in.analyse(context.Background(), c.msg, origin{via: schemas.ReceivedViaSMTP})
				if err != nil || res.events[0].(*schemas.ComplaintReceived).Trusted != c.want {
					b.Fatalf("analyse: %v", err)
				}
			}
		})
	}
}

// BenchmarkAnalyseDMARCReport measures reading a large receiver's daily
// aggregate report (5000 records, gzip attachment) into its events:
// unwrapping, XML, tracing and ids, without publishing.
func BenchmarkAnalyseDMARCReport(b *testing.B) {
	in := analyser(b)
	rows := make([]dmarcRow, 5000)
	for i := range rows {
		rows[i] = dmarcRow{ip: fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), headerFrom: "sender.example", dkim: "pass", spf: "fail", count: i + 1}
	}
	msg := googleMail("bench", "application/gzip", "big.xml.gz", gzipped(b, dmarcXML("google.com", "bench-1", "sender.example", rows)))
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		res, err := in.analyse(context.Background(), msg, origin{via: schemas.ReceivedViaSMTP})
		if err != nil || len(res.events) != len(rows) {
			b.Fatalf("analyse: %d events, %v", len(res.events), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/record")
}
