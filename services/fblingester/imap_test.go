package fblingester

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
)

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// startIMAP runs go-imap's in-memory server with one user holding INBOX
// and Processed.
func startIMAP(t *testing.T) (string, *imapmemserver.User) {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("fbl@sender.example", "secret")
	for _, f := range []string{"INBOX", "Processed"} {
		if err := u.Create(f, nil); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), u
}

func deliver(t *testing.T, u *imapmemserver.User, msg []byte) {
	t.Helper()
	if _, err := u.Append("INBOX", literal{bytes.NewReader(msg)}, &imap.AppendOptions{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, u *imapmemserver.User, folder string) uint32 {
	t.Helper()
	st, err := u.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	return *st.NumMessages
}

func TestIMAPPullStoresThenCleans(t *testing.T) {
	addr, u := startIMAP(t)
	n := startRestartableNATS(t)
	cfg := testConfig()
	cfg.SMTP.Listen = ""
	cfg.PublishTimeout = 3e9
	acct := IMAPAccount{Name: "fbl", Addr: addr, TLS: tlsNone, Username: "fbl@sender.example", Password: "secret"}
	cfg.IMAP.Accounts = []IMAPAccount{acct}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := startIngester(t, cfg, n.js)
	r.stop() // pulls are driven by hand below
	in := r.in

	deliver(t, u, arfReport("imap1", "abuse", "192.0.2.10", sign(t, "acme", "192.0.2.10", "m-i1")))
	deliver(t, u, dsnBounce("imapb1", sign(t, "acme", "192.0.2.11", "m-ib1")))
	deliver(t, u, []byte("Subject: hi\r\nMessage-ID: <junk@x>\r\n\r\nnot a report\r\n"))

	// NATS down: nothing is stored, so nothing leaves the mailbox.
	n.stop()
	if _, err := in.pullIMAP(context.Background(), acct); err == nil {
		t.Fatal("pull with NATS down reported success")
	}
	if c := count(t, u, "INBOX"); c != 3 {
		t.Fatalf("INBOX holds %d after a failed pull, want all 3", c)
	}
	n.start(t)

	got, err := in.pullIMAP(context.Background(), acct)
	if err != nil || got != 3 {
		t.Fatalf("pull: %d, %v; want 3", got, err)
	}
	if c := count(t, u, "INBOX"); c != 0 {
		t.Errorf("INBOX holds %d after the pull, want 0 (deleted once stored)", c)
	}
	cs := decode[schemas.ComplaintReceived](t, storedMsgs(t, n.js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(cs) != 1 || cs[0].ReceivedVia != schemas.ReceivedViaIMAP || cs[0].Customer != "acme" {
		t.Fatalf("complaints %+v", cs)
	}
	if bs := storedMsgs(t, n.js, "BOUNCE", schemas.SubjectBounceReceived); len(bs) != 2 {
		t.Errorf("%d bounces, want 2", len(bs))
	}
	if dl := storedMsgs(t, n.js, "DLQ", bus.DeadLetterSubject(WorkerName)); len(dl) != 1 {
		t.Errorf("%d dead letters, want 1", len(dl))
	}

	// move_to: the message goes to Processed instead of being deleted.
	acct.MoveTo = "Processed"
	deliver(t, u, arfReport("imap2", "abuse", "192.0.2.10", ""))
	if got, err := in.pullIMAP(context.Background(), acct); err != nil || got != 1 {
		t.Fatalf("pull with move_to: %d, %v", got, err)
	}
	if c, p := count(t, u, "INBOX"), count(t, u, "Processed"); c != 0 || p != 1 {
		t.Errorf("INBOX %d, Processed %d; want 0 and 1", c, p)
	}
}

func TestIMAPPullScheduled(t *testing.T) {
	addr, u := startIMAP(t)
	js := startNATS(t)
	cfg := testConfig()
	cfg.SMTP.Listen = ""
	cfg.IMAP.Interval = 100e6
	cfg.IMAP.Accounts = []IMAPAccount{{Name: "fbl", Addr: addr, TLS: tlsNone, Username: "fbl@sender.example", Password: "secret"}}
	startIngester(t, cfg, js)
	deliver(t, u, arfReport("sched1", "abuse", "192.0.2.10", ""))
	waitCount(t, js, "COMPLAINT", schemas.SubjectComplaintReceived, 1)
	deadline := time.Now().Add(5 * time.Second)
	for count(t, u, "INBOX") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("message not removed after its event was stored")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
