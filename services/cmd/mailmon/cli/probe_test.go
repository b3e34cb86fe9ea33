package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
	"github.com/mailmon/mailmon/services/probesender"
)

type acceptAll struct{}

func (acceptAll) Mail(string, *smtp.MailOptions) error { return nil }
func (acceptAll) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (acceptAll) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (acceptAll) Reset()                               {}
func (acceptAll) Logout() error                        { return nil }

// probe now sends a round and prints each probe's result as a stand-in
// retriever reports it: one received, one missing (exit 1).
func TestProbeNowPrintsResults(t *testing.T) {
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return acceptAll{}, nil }))
	srv.Domain = "mx.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// A stand-in retriever: the first probe is received, the second missing.
	cons, err := js.OrderedConsumer(context.Background(), "PROBE", jetstream.OrderedConsumerConfig{FilterSubjects: []string{schemas.SubjectProbeSent}})
	if err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "mailbox-retriever"})
	n := 0
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := schemas.Decode(m.Data())
		if err != nil {
			return
		}
		s := ev.(*schemas.ProbeSent)
		var out schemas.Event
		if n++; n == 1 {
			out = &schemas.ProbeReceived{ProbeRoute: s.ProbeRoute, ProbeSeed: s.ProbeSeed, MessageID: s.MessageID, SentAt: s.Time, ArrivedAt: s.Time,
				ProbeFiling:   schemas.ProbeFiling{Account: "a", Protocol: "imap", Placement: "spam", Folder: "Junk"},
				ArrivalSource: "internaldate", ProbeVerdicts: schemas.ProbeVerdicts{SPF: "pass"}}
		} else {
			out = &schemas.ProbeMissing{ProbeRoute: s.ProbeRoute, ProbeSeed: s.ProbeSeed, MessageID: s.MessageID, SentAt: s.Time, Account: "a", WaitedMs: 600000, FoldersChecked: []string{"INBOX", "Junk"}}
		}
		_ = schemas.Stamp(out, schemas.Source{Worker: "mailbox-retriever", Host: "t"}, time.Now())
		_ = pub.Publish(context.Background(), out)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

	cfg := probesender.DefaultConfig()
	cfg.From = "probe@sender.test"
	cfg.Sources = []probesender.Source{{Name: "relay", Type: probesender.SourceSMTP, Addr: ln.Addr().String(), TLS: probesender.TLSNone}}
	cfg.Targets = []probesender.Target{
		{Name: "gmail-1", Provider: "gmail", Address: "a@gmail.test"},
		{Name: "gmail-2", Provider: "gmail", Address: "b@gmail.test"},
	}
	cfg.Concurrency = 1
	ring := tracking.Keyring{Current: tracking.Key{ID: "k", Secret: []byte("0123456789abcdef0123456789abcdef")}}
	var out, errOut bytes.Buffer
	code := probeNow(context.Background(), js, cfg, worker.Tracking{Keyring: &ring}, 10*time.Second, &out, &errOut)
	if code != exitFailure {
		t.Errorf("exit %d, want %d (one probe missing)\n%s%s", code, exitFailure, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{"sent      gmail-1", "accepted 250", "received", "spam (Junk)", "spf=pass", "missing", "INBOX, Junk"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}
