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
