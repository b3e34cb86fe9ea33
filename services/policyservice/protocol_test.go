package policyservice

import (
	"bufio"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
)

var testLimits = Limits{MaxAttributes: 10, MaxLineBytes: 64}

func TestReadRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Request
		wantErr error
	}{
		{
			name: "two requests on one connection",
			in:   "request=smtpd_access_policy\nsender=a@x.test\n\nrequest=smtpd_access_policy\nsender=b@y.test\nsasl_username=\n\n",
			want: []Request{{"request": "smtpd_access_policy", "sender": "a@x.test"}, {"request": "smtpd_access_policy", "sender": "b@y.test", "sasl_username": ""}},
		},
		{
			name: "CRLF and a value holding '='",
			in:   "request=smtpd_access_policy\r\nccert_subject=CN=a=b\r\n\r\n",
			want: []Request{{"request": "smtpd_access_policy", "ccert_subject": "CN=a=b"}},
		},
		{
			name: "stray empty lines between requests",
			in:   "\n\nrequest=x\n\n\n",
			want: []Request{{"request": "x"}},
		},
		{
			name: "a later attribute replaces an earlier one",
			in:   "sender=a\nsender=b\n\n",
			want: []Request{{"sender": "b"}},
		},
		{name: "no equals sign", in: "request\n\n", wantErr: ErrMalformed},
		{name: "empty name", in: "=x\n\n", wantErr: ErrMalformed},
		{name: "bad name", in: "a b=c\n\n", wantErr: ErrMalformed},
		{name: "too many attributes", in: strings.Repeat("a=b\n", 11) + "\n", wantErr: ErrTooManyAttributes},
		{name: "line too long", in: "sender=" + strings.Repeat("x", 100) + "\n\n", wantErr: ErrLineTooLong},
		{name: "closed mid-request", in: "request=x\nsender=a", wantErr: io.ErrUnexpectedEOF},
		{name: "closed after a complete line", in: "request=x\n", wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tc.in), 16) // small buffer: lines span reads
			var got []Request
			for {
				req, err := ReadRequest(r, testLimits)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if tc.wantErr == nil || !errors.Is(err, tc.wantErr) {
						t.Fatalf("error %v, want %v", err, tc.wantErr)
					}
					return
				}
				got = append(got, req)
			}
			if tc.wantErr != nil {
				t.Fatalf("no error, want %v", tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d requests %v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if !maps.Equal(got[i], tc.want[i]) {
					t.Errorf("request %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestAnswerIsOneLine(t *testing.T) {
	got := string(Answer("REJECT 5.7.1 bad\r\ninjected=1"))
	if got != "action=REJECT 5.7.1 bad  injected=1\n\n" {
		t.Errorf("answer %q", got)
	}
}

func TestWithStatusClass(t *testing.T) {
	for in, want := range map[string]string{
		"4.7.1 Sending suspended": "5.7.1 Sending suspended",
		"5.7.1 Sending suspended": "5.7.1 Sending suspended",
		"Sending suspended":       "5.7.1 Sending suspended",
	} {
		if got := withStatusClass(in, '5'); got != want {
			t.Errorf("withStatusClass(%q, 5) = %q, want %q", in, got, want)
		}
	}
	if got := withStatusClass("5.7.1 x", '4'); got != "4.7.1 x" {
		t.Errorf("to class 4: %q", got)
	}
}
