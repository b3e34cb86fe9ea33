package bounceclass

import "testing"

// A phase the caller knows (from a DSN's or a log line's "in reply to ...")
// narrows a rule as a phase named in the text does; the text's own wins.
func TestPhaseFromTheCaller(t *testing.T) {
	for _, tc := range []struct {
		in   Input
		want string
	}{
		{Input{Text: "550 5.1.1 User unknown"}, ReasonUserUnknown},
		{Input{Text: "550 5.1.1 User unknown", Phase: PhaseRcpt}, ReasonUserUnknown},
		{Input{Text: "550 5.1.1 User unknown", Phase: PhaseData}, ReasonFiltered},
		{Input{Text: "550 5.1.1 User unknown", Phase: PhaseMail}, ReasonRejected},
		{Input{Text: "550 5.1.1 User unknown (in reply to RCPT TO command)", Phase: PhaseData}, ReasonUserUnknown},
		// Every rule that reads an unknown recipient follows the stage.
		{Input{Text: "550 5.1.1 <a@example.com>: Recipient address rejected", Phase: PhaseData}, ReasonFiltered},
		{Input{Text: "550-5.1.1 The email account that you tried to reach does not exist.", Phase: PhaseData}, ReasonFiltered},
		{Input{Text: "550-5.1.1 The email account that you tried to reach does not exist.", Phase: PhaseRcpt}, ReasonUserUnknown},
	} {
		if got := Classify(tc.in); got.Reason != tc.want {
			t.Errorf("%+v: %s, want %s", tc.in, got.Reason, tc.want)
		}
	}
}

func TestPhaseOf(t *testing.T) {
	for in, want := range map[string]string{
		"DATA": PhaseData, "end of data": PhaseData, " bdat ": PhaseData,
		"RCPT": PhaseRcpt, "RCPT TO": PhaseRcpt, "rcpt to:": PhaseRcpt,
		"MAIL": PhaseMail, "MAIL FROM command": PhaseMail,
		"HELO": PhaseHelo, "EHLO": PhaseHelo,
		"CONNECT": PhaseConnect, "greeting": PhaseConnect,
		"": "",
	} {
		if got, ok := PhaseOf(in); !ok || got != want {
			t.Errorf("PhaseOf(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"QUIT", "VRFY", "DATA DATA", "x"} {
		if got, ok := PhaseOf(in); ok {
			t.Errorf("PhaseOf(%q) = %q, true; want not ok", in, got)
		}
	}
}
