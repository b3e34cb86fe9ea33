package probesender

import (
	"context"
	"testing"
	"time"
)

// The SMTP transaction's total and end time reach the caller on every
// path: they are set by a deferred function, so the result is named.
func TestSubmitSMTPReportsTotalAndDone(t *testing.T) {
	mx := startMX(t, nil, nil)
	src := Source{Name: "relay-1", Type: SourceSMTP, Addr: mx.addr, TLS: TLSNone}.withDefaults()
	src.TLS = TLSNone
	before := time.Now()
	r := submitSMTP(context.Background(), src, nil, "out1.sender.test", "probe@sender.test", "seed@inbox.test", []byte("Subject: x\r\n\r\nhello\r\n"), 5*time.Second)
	if r.Outcome != "accepted" {
		t.Fatalf("outcome %q: %s", r.Outcome, r.Error)
	}
	if r.Total <= 0 || r.Total < r.Data || r.Done.Before(before) {
		t.Errorf("total %s (data %s), done %s: want the transaction's length and end", r.Total, r.Data, r.Done)
	}

	// A refused connection: no reply, but still a length and an end.
	dead := Source{Name: "dead", Type: SourceSMTP, Addr: "127.0.0.1:1", TLS: TLSNone}
	r = submitSMTP(context.Background(), dead, nil, "out1.sender.test", "probe@sender.test", "seed@inbox.test", []byte("x\r\n"), 5*time.Second)
	if r.FailedPhase != phaseConnect || r.Total < 0 || r.Done.IsZero() {
		t.Errorf("refused connection: phase %q total %s done %s", r.FailedPhase, r.Total, r.Done)
	}
}
