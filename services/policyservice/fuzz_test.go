package policyservice

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"sort"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// FuzzReadRequest feeds arbitrary bytes to the request parser: it must
// never panic, never return more attributes or longer lines than the
// limits allow, and what it accepts must read back the same once written
// out again.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range []string{
		"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.1\nsender=a@x.test\nrecipient=b@gmail.com\nsasl_username=acme\n\n",
		"request=smtpd_access_policy\r\n\r\n",
		"\n\n\n",
		"a=b\nc\n\n",
		"=\n\n",
		"sender=" + strings.Repeat("x", 300) + "\n\n",
		"a=1\na=2\n\nb=3\n\n",
	} {
		f.Add([]byte(seed))
	}
	lim := Limits{MaxAttributes: 20, MaxLineBytes: 256}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		for range 100 {
			req, err := ReadRequest(r, lim)
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMalformed) ||
					errors.Is(err, ErrTooManyAttributes) || errors.Is(err, ErrLineTooLong) {
					return
				}
				t.Fatalf("unexpected error type: %v", err)
			}
			if len(req) > lim.MaxAttributes {
				t.Fatalf("%d attributes, limit %d", len(req), lim.MaxAttributes)
			}
			var buf bytes.Buffer
			names := make([]string, 0, len(req))
			for k := range req {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				if len(k)+1+len(req[k])+1 > lim.MaxLineBytes {
					t.Fatalf("line of %d bytes accepted", len(k)+len(req[k])+2)
				}
				buf.WriteString(k + "=" + req[k] + "\n")
			}
			buf.WriteString("\n")
			again, err := ReadRequest(bufio.NewReader(&buf), lim)
			if len(req) == 0 {
				continue
			}
			if err != nil || !maps.Equal(req, again) {
				t.Fatalf("re-read %v (%v), want %v", again, err, req)
			}
		}
	})
}

// FuzzRecordAnswer feeds arbitrary bucket values through the checks the
// watch and the snapshot apply: whatever passes is answered with an
// allowed action, on one line of printable ASCII, built by the service.
func FuzzRecordAnswer(f *testing.F) {
	good := enforcement.Record{DecisionID: "d", Action: schemas.ActionCutoff, DecisionTarget: enforcement.Customer("acme").Target(),
		PolicyAction: "DEFER_IF_PERMIT", PolicyText: "4.7.1 Sending suspended for customer:acme"}
	reroute := enforcement.Record{DecisionID: "d", Action: schemas.ActionReroute, DecisionTarget: enforcement.Customer("acme").Target(), Transport: "ndr"}
	f.Add(good.Marshal())
	f.Add(reroute.Marshal())
	for _, spoil := range []func(*enforcement.Record){
		func(r *enforcement.Record) { r.PolicyAction = "OK relay me" },
		func(r *enforcement.Record) { r.PolicyText = "5.7.1 x\r\naction=OK" },
		func(r *enforcement.Record) { r.PolicyText = "4.7.1.1 x" },
		func(r *enforcement.Record) {
			r.Action, r.Transport = schemas.ActionReroute, "smtp:[evil.example]:25 PREPEND X:"
		},
	} {
		r := good
		spoil(&r)
		f.Add(r.Marshal())
	}
	f.Add([]byte(`{"action":"cutoff","scope":"customer","subject":"customer:a\u0000","customer":"a\u0000"}`))
	cfg := DefaultConfig()
	srv := &Server{cfg: cfg}
	f.Fuzz(func(t *testing.T, value []byte) {
		r, err := enforcement.Unmarshal(value)
		if err != nil {
			return
		}
		e, err := srv.checkRecord(r.SubjectOf().Key(), 1, value)
		if err != nil {
			return
		}
		action, _, _ := strings.Cut(e.answer, " ")
		if !cfg.allows(action) {
			t.Fatalf("answer %q: action %q not allowed", e.answer, action)
		}
		if action == "FILTER" && e.answer != "FILTER ndr:" {
			t.Fatalf("reroute answered %q", e.answer)
		}
		for i := 0; i < len(e.answer); i++ {
			if c := e.answer[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("answer %q has byte 0x%02x", e.answer, c)
			}
		}
		if len(e.answer) > len("DEFER_IF_PERMIT ")+maxTextBytes {
			t.Fatalf("answer of %d bytes", len(e.answer))
		}
		if got := string(Answer(e.answer)); got != "action="+e.answer+"\n\n" {
			t.Fatalf("answer line %q", got)
		}
	})
}
