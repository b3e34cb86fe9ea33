package mtalogtailer_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/mtalogtailer"
)

func TestPublishesDeliveryEvents(t *testing.T) {
	js := startBus(t)
	path := filepath.Join(t.TempDir(), "mail.log")
	w := newLogWriter(t, path)
	var rcpts []string
	for range 4 {
		rcpts = append(rcpts, w.message())
	}
	at := w.base.Add(time.Minute)
	// A header signed with a key we do not have: ignored, counted.
	forged := tracking.Keyring{Current: tracking.Key{ID: "k1", Secret: []byte("not-our-secret-not-our-secret-xx")}}
	value, err := forged.Sign(tracking.Fields{Customer: "evil", Source: "x", MessageID: "x", Time: at})
	if err != nil {
		t.Fatal(err)
	}
	w.line(at, "postfix/cleanup", 7, "4F00000001: warning: header X-Mailmon-Track: "+value+" from a[192.0.2.1]; from=<a@b.example> to=<c@gmail.com> proto=ESMTP helo=<a>")
	w.line(at, "postfix/smtp", 8, "4F00000001: to=<forged@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=0.5, delays=0.01/0/0.2/0.29, dsn=2.0.0, status=sent (250 2.0.0 OK)")
	// No tracking header at all, and a NOQUEUE reject by our own MTA.
	w.line(at, "postfix/smtp", 8, "4F00000002: to=<plain@icloud.com>, relay=mx01.mail.icloud.com[17.57.154.6]:25, delay=0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)")
	w.line(at, "postfix/smtpd", 9, "NOQUEUE: reject: RCPT from unknown[203.0.113.77]: 554 5.7.1 <friend@elsewhere.example>: Relay access denied; from=<spam@bulk.example> to=<friend@elsewhere.example> proto=ESMTP helo=<bulk.example>")
	// Not a log line.
	if _, err := w.f.WriteString("this is not a syslog line\n"); err != nil {
		t.Fatal(err)
	}

	run := startTailer(t, js, testConfig(path))
	testwait.Eventually(t, 15*time.Second, "7 events and 1 dead letter", func() bool {
		return streamCount(t, js, "DELIVERY") >= 7 && streamCount(t, js, "DLQ") >= 1
	})
	run.stop(t)

	events := streamEvents(t, js)
	byRcpt := map[string]*schemas.DeliveryAttempted{}
	for _, ev := range events {
		byRcpt[ev.Recipient] = ev
	}
	if len(events) != 7 || len(byRcpt) != 7 {
		t.Fatalf("%d events for %d recipients, want 7", len(events), len(byRcpt))
	}
	for i, want := range []struct {
		status, provider, dsn, reason, category, signature string
		code                                               uint16
	}{
		{"sent", "gmail", "2.0.0", "delivered", "", "", 250},
		{"deferred", "yahoo", "4.7.0", "badreputation", "blocked_ip_or_blocklist", "yahoo-TSS04", 421},
		{"bounced", "outlook", "5.1.1", "userunknown", "user_unknown", "", 550},
		{"bounced", "", "5.7.1", "blocked", "blocked_ip_or_blocklist", "spamhaus", 554},
	} {
		ev := byRcpt[rcpts[i]]
		if ev == nil {
			t.Fatalf("no event for %s", rcpts[i])
		}
		if ev.Status != want.status || ev.Provider != want.provider || ev.DSN != want.dsn || ev.Reason != want.reason ||
			ev.Signature != want.signature || ev.ReplyCode != want.code || (want.category != "" && ev.Category != want.category) {
			t.Errorf("%s: status %s provider %q dsn %s reason %s category %s signature %q code %d; want %+v",
				rcpts[i], ev.Status, ev.Provider, ev.DSN, ev.Reason, ev.Category, ev.Signature, ev.ReplyCode, want)
		}
		if ev.Customer != "acme" || ev.TrackingStatus != schemas.TrackingValid || ev.TrackingID != fmt.Sprintf("m-%d", i) {
			t.Errorf("%s: customer %q tracking %s id %q", rcpts[i], ev.Customer, ev.TrackingStatus, ev.TrackingID)
		}
		if ev.SourceIP != "192.0.2.9" || ev.MTA != "postfix" || ev.MTAHost != "mx1" || ev.MTAInstance != "postfix-192.0.2.9/smtp" || ev.Agent != "smtp" {
			t.Errorf("%s: source ip %q mta %s host %s instance %s agent %s", rcpts[i], ev.SourceIP, ev.MTA, ev.MTAHost, ev.MTAInstance, ev.Agent)
		}
		if ev.MessageID != fmt.Sprintf("m-%d@app1.example", i) || ev.Sender != "news@shop.example" || ev.SizeBytes != 4321 || ev.Nrcpt != 1 ||
			ev.ClientIP != "198.51.100.21" || ev.QueueID != fmt.Sprintf("%010X", 0x3A00000000+i) {
			t.Errorf("%s: message context %+v", rcpts[i], ev)
		}
		if ev.DelayMs != 1200 || ev.DelayBeforeQmgrMs != 100 || ev.DelayInQmgrMs != 20 || ev.DelayConnSetupMs != 500 || ev.DelayTransmissionMs != 580 {
			t.Errorf("%s: delays %d %d %d %d %d", rcpts[i], ev.DelayMs, ev.DelayBeforeQmgrMs, ev.DelayInQmgrMs, ev.DelayConnSetupMs, ev.DelayTransmissionMs)
		}
		wantTime := w.base.Add(time.Duration(i)*10*time.Millisecond + 1200*time.Millisecond)
		if !ev.Time.Equal(wantTime) || ev.Source.Worker != mtalogtailer.WorkerName || ev.RecipientDomain != outcomes[i].domain {
			t.Errorf("%s: time %s source %+v domain %s", rcpts[i], ev.Time, ev.Source, ev.RecipientDomain)
		}
	}
	if ev := byRcpt["forged@gmail.com"]; ev.TrackingStatus != schemas.TrackingInvalid || ev.Customer != "" || ev.TrackingID != "" {
		t.Errorf("forged header: status %s customer %q", ev.TrackingStatus, ev.Customer)
	}
	if ev := byRcpt["plain@icloud.com"]; ev.TrackingStatus != schemas.TrackingMissing || ev.Provider != "icloud" || ev.SourceIP != "" || ev.DelayBeforeQmgrMs != -1 {
		t.Errorf("untracked: %+v", ev)
	}
	if ev := byRcpt["friend@elsewhere.example"]; ev.Status != schemas.StatusRejected || ev.Reason != "norelaying" || ev.ReplyCode != 554 || ev.ClientIP != "203.0.113.77" || ev.Agent != "smtpd" {
		t.Errorf("reject: %+v", ev)
	}

	dead := readStream(t, js, "DLQ", func(b []byte) string { return string(b) })
	if len(dead) != 1 || dead[0] != "this is not a syslog line" {
		t.Fatalf("dead letters %q", dead)
	}
	for name, want := range map[string]float64{
		"mailmon_mta_log_tailer_lines_read_total":       float64(4*6 - 1 + 5),
		"mailmon_mta_log_tailer_unparsed_lines_total":   1,
		"mailmon_mta_log_tailer_events_published_total": 7,
		"mailmon_mta_log_tailer_lag_bytes":              0,
	} {
		if got := run.counter(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := run.counter(t, "mailmon_mta_log_tailer_tracking_headers_total"); got != 7 {
		t.Errorf("tracking verdicts %v, want 7", got)
	}
}

// TestRestartMidFileCountsEachDeliveryOnce stops the tailer in the middle
// of a long log — once cleanly, once as a crash that neither waits for its
// publishes nor stores its last positions — and checks every delivery
// event is in the stream exactly once.
func TestRestartMidFileCountsEachDeliveryOnce(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "drain", true: "crash"}[crash], func(t *testing.T) {
			js := startBus(t)
			path := filepath.Join(t.TempDir(), "mail.log")
			w := newLogWriter(t, path)
			var want []string
			for range 3000 {
				want = append(want, w.message())
			}
			cfg := testConfig(path)
			cfg.CommitLines = 500
			var tune []func(*mtalogtailer.Tailer)
			if crash {
				tune = append(tune, mtalogtailer.SimulateCrashes)
			}
			first := startTailer(t, js, cfg, tune...)
			testwait.Eventually(t, 30*time.Second, "a third of the events", func() bool { return streamCount(t, js, "DELIVERY") >= 1000 })
			first.stop(t)
			readBefore := first.counter(t, "mailmon_mta_log_tailer_lines_read_total")
			published := streamCount(t, js, "DELIVERY")
			if published >= uint64(len(want)) {
				t.Fatalf("the tailer finished (%d events) before it was stopped; the test proves nothing", published)
			}

			second := startTailer(t, js, cfg)
			testwait.Eventually(t, 30*time.Second, "every event", func() bool {
				return streamCount(t, js, "DELIVERY") >= uint64(len(want))
			})
			second.stop(t)
			countByID(t, streamEvents(t, js), want)

			// The restart resumed near where the first run stopped, not
			// at the start of the log.
			readAfter := second.counter(t, "mailmon_mta_log_tailer_lines_read_total")
			total := float64(len(want)*6 - len(want)/4)
			if readAfter >= total {
				t.Errorf("the restart read %v of %v lines: it did not resume from its checkpoint", readAfter, total)
			}
			if readBefore+readAfter < total {
				t.Errorf("only %v + %v of %v lines were read", readBefore, readAfter, total)
			}
			t.Logf("first run read %v lines, the restart %v (%v read twice)", readBefore, readAfter, readBefore+readAfter-total)
		})
	}
}

// TestRotationWhileRunning rotates the log by rename and by copytruncate
// while the tailer follows it, with a restart in between.
func TestRotationWhileRunning(t *testing.T) {
	js := startBus(t)
	path := filepath.Join(t.TempDir(), "mail.log")
	w := newLogWriter(t, path)
	cfg := testConfig(path)
	run := startTailer(t, js, cfg)

	var want []string
	write := func(n int) {
		for range n {
			want = append(want, w.message())
		}
	}
	wait := func() {
		testwait.Eventually(t, 30*time.Second, fmt.Sprintf("%d events", len(want)), func() bool { return streamCount(t, js, "DELIVERY") >= uint64(len(want)) })
	}
	write(200)
	w.rotateRename(5)
	write(200)
	wait()
	w.rotateCopyTruncate(5)
	write(200)
	// Rotated while a restart is under way (and twice more while down).
	run.stop(t)
	write(50)
	w.rotateRename(5)
	write(50)
	w.rotateCopyTruncate(5)
	write(50)
	run = startTailer(t, js, cfg)
	wait()
	write(100)
	w.rotateRename(5)
	write(100)
	wait()
	run.stop(t)
	countByID(t, streamEvents(t, js), want)
	if lost := run.counter(t, "mailmon_mta_log_tailer_lost_files_total"); lost != 0 {
		t.Errorf("%v files lost", lost)
	}
}

func TestReadsStandardInput(t *testing.T) {
	js := startBus(t)
	path := filepath.Join(t.TempDir(), "mail.log")
	w := newLogWriter(t, path)
	var want []string
	for range 20 {
		want = append(want, w.message())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Files = []mtalogtailer.FileConfig{{Path: "-", Format: "postfix"}}
	pr, pw := io.Pipe()
	run := startTailer(t, js, cfg, func(tl *mtalogtailer.Tailer) { mtalogtailer.SetStdin(tl, pr) })
	go func() {
		pw.Write(data)
		pw.Close()
	}()
	select {
	case err := <-run.done:
		if err != nil {
			t.Fatal(err)
		}
		run.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return at the end of standard input")
	}
	countByID(t, streamEvents(t, js), want)

	// The same log followed as a file gives the same ids: nothing new.
	cfg = testConfig(path)
	file := startTailer(t, js, cfg)
	testwait.Eventually(t, 15*time.Second, "the file read", func() bool {
		return file.counter(t, "mailmon_mta_log_tailer_events_published_total") >= float64(len(want))
	})
	file.stop(t)
	countByID(t, streamEvents(t, js), want)
}

func TestRunNeedsTheBucket(t *testing.T) {
	js := startBus(t)
	if err := js.DeleteKeyValue(context.Background(), mtalogtailer.Bucket); err != nil {
		t.Fatal(err)
	}
	tl, err := mtalogtailer.New(testConfig(filepath.Join(t.TempDir(), "x.log")), workerSettings(js))
	if err != nil {
		t.Fatal(err)
	}
	err = tl.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), mtalogtailer.Bucket) {
		t.Fatalf("Run without the bucket: %v", err)
	}
}
