package fblingester

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
)

// smallPayload is the max_payload of the server the unstorable tests run:
// a report well under max_message_bytes makes an event over it.
const smallPayload = 32 << 10

// startSmallNATS runs a real NATS server whose max_payload is
// smallPayload.
func startSmallNATS(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		MaxPayload: smallPayload, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	applyTopology(t, js)
	return js
}

// hugeReport is a genuine-looking abuse report whose Reported-URI fields
// make its event bigger than smallPayload, though the message itself is
// within max_message_bytes.
func hugeReport(id string) []byte {
	msg := string(arfReport(id, "abuse", "192.0.2.10", ""))
	var uris strings.Builder
	for i := range 400 {
		fmt.Fprintf(&uris, "Reported-URI: http://www.sender.example/track/%04d/%s\r\n", i, strings.Repeat("x", 60))
	}
	return []byte(strings.Replace(msg, "Reported-Domain: sender.example\r\n", "Reported-Domain: sender.example\r\n"+uris.String(), 1))
}

func checkDeadLetter(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	dl := storedMsgs(t, js, "DLQ", bus.DeadLetterSubject(WorkerName))
	if len(dl) != n {
		t.Fatalf("%d dead letters, want %d", len(dl), n)
	}
	for _, m := range dl {
		if reason := m.Header.Get(bus.HeaderDeadLetterReason); !strings.Contains(reason, "over what NATS accepts") {
			t.Errorf("dead letter reason %q", reason)
		}
	}
}

// TestUnstorableReportIsRefusedAndDeadLettered: a report whose event is
// over NATS's max_payload is answered 552 5.3.4 (not 451 for ever), kept
// as a dead letter with the reason, and counted.
func TestUnstorableReportIsRefusedAndDeadLettered(t *testing.T) {
	js := startSmallNATS(t)
	r := startIngester(t, testConfig(), js)
	msg := hugeReport("huge1")
	if int64(len(msg)) > testConfig().MaxMessageBytes.Int64() {
		t.Fatalf("test report of %d bytes is over max_message_bytes", len(msg))
	}
	err := send(r.addr, "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, msg)
	var se *smtp.SMTPError
	if smtpCode(err) != 552 || !errors.As(err, &se) || se.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) {
		t.Fatalf("unstorable report: %v, want 552 5.3.4", err)
	}
	checkDeadLetter(t, js, 1)
	if n := len(storedMsgs(t, js, "COMPLAINT", "")); n != 0 {
		t.Errorf("%d complaints stored", n)
	}
	if got := counter(t, r.in.m.unstorable.WithLabelValues(schemas.ReceivedViaSMTP)); got != 1 {
		t.Errorf("unstorable counted %v, want 1", got)
	}
	// The listener goes on with the next report.
	if err := send(r.addr, "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, arfReport("next1", "abuse", "192.0.2.10", "")); err != nil {
		t.Fatalf("next report: %v", err)
	}
}

// TestDeadLetterFitsSmallMaxPayload: a message bigger than the server's
// max_payload is cut to fit, and the cut is said in a header, so the dead
// letter itself can be stored.
func TestDeadLetterFitsSmallMaxPayload(t *testing.T) {
	js := startSmallNATS(t)
	r := startIngester(t, testConfig(), js)
	garbage := []byte("Subject: hello\r\nMessage-ID: <big-garbage@x>\r\n\r\n" + strings.Repeat("no report here, just text\r\n", 2000))
	if err := send(r.addr, "someone@example.org", []string{"fbl@sender.example"}, garbage); err != nil {
		t.Fatalf("garbage bigger than max_payload: %v, want 250 with a dead letter", err)
	}
	dl := storedMsgs(t, js, "DLQ", bus.DeadLetterSubject(WorkerName))
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if len(dl[0].Data) >= smallPayload || dl[0].Header.Get(headerDeadLetterOrigSize) != strconv.Itoa(len(garbage)) {
		t.Errorf("dead letter of %d bytes, original size header %q; want cut under %d and %d", len(dl[0].Data), dl[0].Header.Get(headerDeadLetterOrigSize), smallPayload, len(garbage))
	}
}

// TestUnstorableReportDoesNotStopMailboxOrDirectory: the IMAP pull and the
// directory import dead-letter the unstorable report, clear it like a
// processed one, and go on to the next message in the same pull.
func TestUnstorableReportDoesNotStopMailboxOrDirectory(t *testing.T) {
	js := startSmallNATS(t)
	cfg := testConfig()
	cfg.SMTP.Listen = ""
	r := startIngester(t, cfg, js)
	r.stop()

	addr, u := startIMAP(t)
	deliver(t, u, hugeReport("imap-huge"))
	deliver(t, u, arfReport("imap-after", "abuse", "192.0.2.10", ""))
	acct := IMAPAccount{Name: "fbl", Addr: addr, TLS: tlsNone, Username: "fbl@sender.example", Password: "secret"}
	if n, err := r.in.pullIMAP(context.Background(), acct); err != nil || n != 2 {
		t.Fatalf("pull: %d, %v; want both messages handled", n, err)
	}
	if c := count(t, u, "INBOX"); c != 0 {
		t.Errorf("INBOX holds %d, want 0", c)
	}

	dir := t.TempDir()
	for name, msg := range map[string][]byte{"1.eml": hugeReport("dir-huge"), "2.eml": arfReport("dir-after", "abuse", "192.0.2.10", "")} {
		if err := os.WriteFile(filepath.Join(dir, name), msg, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := r.in.ImportDir(context.Background(), dir, false); err != nil || n != 2 {
		t.Fatalf("import: %d, %v; want both files handled", n, err)
	}
	if left, _ := MessageFiles(dir); len(left) != 0 {
		t.Errorf("files left in the directory: %v", left)
	}
	checkDeadLetter(t, js, 2)
	if n := len(storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived)); n != 2 {
		t.Errorf("%d complaints, want 2 (the reports after the unstorable ones)", n)
	}
}

// TestPermanentPublishError: what the server refuses for size is not
// retried; what fails for now (no answer, no connection) is.
func TestPermanentPublishError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&bus.PublishError{Subject: "s", Err: nats.ErrMaxPayload}, true},
		{fmt.Errorf("publish: %w", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamMessageExceedsMaximum, Description: "message size exceeds maximum allowed"}), true},
		{&bus.PublishError{Subject: "s", Err: context.DeadlineExceeded}, false},
		{&bus.PublishError{Subject: "s", Err: nats.ErrNoResponders}, false},
		{&bus.PublishError{Subject: "s", Err: nats.ErrConnectionClosed}, false},
	} {
		if got := permanentPublishError(c.err); got != c.want {
			t.Errorf("permanentPublishError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
