package complaintevaluator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/complaintevaluator"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// reportRecord is one record of a DMARC aggregate report for the day
// before end, as the fbl-ingester publishes it.
func reportRecord(reportID, org, ip, verdict string, count uint64, ours bool, end time.Time) *schemas.DMARCRecord {
	begin := end.Add(-24 * time.Hour)
	return stamp(&schemas.DMARCRecord{ReportID: reportID, OrgName: org, Begin: begin, End: end, Domain: "acme.example", Policy: "reject",
		Percent: 100, SourceIP: ip, Count: count, Disposition: "none", DKIM: verdict, SPF: verdict, DMARC: verdict,
		HeaderFrom: "acme.example", OurSource: ours, ReceivedVia: schemas.ReceivedViaSMTP}, begin)
}

// The report rules through the real worker on a real NATS: reports read
// from the DMARC and TLSRPT streams fire once, a restart raises nothing
// again, and reports that left the window while the worker was down
// resolve at start.
func TestReportAlertsThroughTheWorker(t *testing.T) {
	js, kv := newNATS(t)
	l := &loop{js: js, kv: kv, pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})}
	cfg := evaluatorConfig(time.Hour, schemas.ActionCutoff)
	_, stop := startEvaluator(t, js, cfg)

	const ours, spoofer = "192.0.2.10", "203.0.113.9"
	end := time.Now().Add(-time.Hour)
	tls := stamp(&schemas.TLSRPTResult{ReportID: "tls-1", Organization: "google.com", Begin: end.Add(-24 * time.Hour), End: end,
		PolicyDomain: "acme.example", PolicyType: "sts", Success: 900, Failure: 100,
		FailureResultTypes: []string{"certificate-expired"}, FailureSendingIPs: []string{"209.85.220.41"}, FailureReceivingMXs: []string{"mx1.acme.example"},
		FailureReceivingIPs: []string{"198.51.100.25"}, FailureSessionCounts: []uint64{100}, FailureReasonCodes: []string{""},
		ReceivedVia: schemas.ReceivedViaIMAP}, end.Add(-24*time.Hour))
	l.publish(t,
		reportRecord("g-1", "google.com", ours, schemas.DMARCPass, 900, true, end),
		reportRecord("g-1", "google.com", ours, schemas.DMARCFail, 100, true, end),
		reportRecord("g-1", "google.com", spoofer, schemas.DMARCFail, 1500, false, end),
		reportRecord("y-1", "yahoo.com", ours, schemas.DMARCPass, 5000, true, end),
		tls)
	keys := map[string]string{
		"alignment": "dmarc_alignment/ip:" + ours + "/reporter:google.com",
		"unknown":   "dmarc_unknown_source/domain:acme.example/ip:" + spoofer,
		"tls":       "tlsrpt_failure/domain:acme.example",
	}
	want := func(name string, statuses ...string) func() bool {
		return func() bool { return fmt.Sprint(alertLog(t, l)[keys[name]]) == fmt.Sprint(statuses) }
	}
	for name := range keys {
		testwait.Eventually(t, 30*time.Second, name+" firing", want(name, schemas.AlertFiring))
	}
	if n := len(alertLog(t, l)); n != 3 {
		t.Errorf("alerts under %d keys, want 3 (yahoo's passes fire nothing): %v", n, alertLog(t, l))
	}

	// A restart with nothing new: nothing is raised again.
	stop()
	_, stop = startEvaluator(t, js, cfg)
	time.Sleep(500 * time.Millisecond)
	for name := range keys {
		if !want(name, schemas.AlertFiring)() {
			t.Errorf("%s after a restart: %v, want one firing", name, alertLog(t, l)[keys[name]])
		}
	}

	// Live: google's next report passes by far, and the failing share falls
	// under 5 %.
	l.publish(t, reportRecord("g-2", "google.com", ours, schemas.DMARCPass, 10000, true, time.Now()))
	testwait.Eventually(t, 30*time.Second, "alignment resolved", want("alignment", schemas.AlertFiring, schemas.AlertResolved))
	stop()

	// Three days on, every report has left the window: the two still
	// firing are resolved at start, once.
	s := settings(t, js, complaintevaluator.WorkerName)
	s.Now = func() time.Time { return time.Now().Add(3 * 24 * time.Hour) }
	ev, err := complaintevaluator.New(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, ev)
	testwait.Eventually(t, 30*time.Second, "unknown resolved", want("unknown", schemas.AlertFiring, schemas.AlertResolved))
	testwait.Eventually(t, 30*time.Second, "tls resolved", want("tls", schemas.AlertFiring, schemas.AlertResolved))
	time.Sleep(300 * time.Millisecond)
	if !want("alignment", schemas.AlertFiring, schemas.AlertResolved)() {
		t.Errorf("alignment: %v, want firing then resolved", alertLog(t, l)[keys["alignment"]])
	}
	for _, ev := range streamEvents(t, js, "ALERT") {
		a := ev.(*schemas.AlertRaised)
		if a.Source.Worker != complaintevaluator.WorkerName {
			t.Errorf("alert from %s", a.Source.Worker)
		}
		if err := schemas.Validate(a); err != nil {
			t.Errorf("invalid alert: %v", err)
		}
	}
}
