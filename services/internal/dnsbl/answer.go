package dnsbl

import (
	"fmt"
	"net/netip"
	"strings"
)

// DNS response codes (RFC 1035, RFC 6895) that Interpret tells apart. They
// equal miekg/dns's Rcode* constants.
const (
	RcodeSuccess        = 0
	RcodeFormatError    = 1
	RcodeServerFailure  = 2
	RcodeNameError      = 3 // NXDOMAIN
	RcodeNotImplemented = 4
	RcodeRefused        = 5
)

var rcodeNames = map[int]string{
	0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
	6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
}

// RcodeName is the mnemonic of a response code, e.g. "SERVFAIL".
func RcodeName(rcode int) string {
	if n, ok := rcodeNames[rcode]; ok {
		return n
	}
	return "RCODE" + fmt.Sprint(rcode)
}

// Status is the outcome of one (target, zone) check.
type Status string

const (
	// Listed: every A answer is a listing code of the zone.
	Listed Status = "listed"
	// NotListed: NXDOMAIN, or a name with no A records.
	NotListed Status = "not_listed"
	// Error: the answer cannot be trusted either way; Cause says why.
	Error Status = "error"
)

// Cause classifies an error result; the values are those of the
// dnsbl.error event's cause field.
type Cause string

const (
	CauseErrorCode       Cause = "error_code"       // the zone answered one of its error codes
	CauseSelfTest        Cause = "selftest_failed"  // the zone failed its self-test this sweep
	CauseTimeout         Cause = "timeout"          // no answer within the timeout, retries included
	CauseServfail        Cause = "servfail"         // SERVFAIL
	CauseRefused         Cause = "refused"          // REFUSED
	CauseTruncated       Cause = "truncated"        // truncated over UDP, and TCP failed
	CauseNXDomainRewrite Cause = "nxdomain_rewrite" // an answer outside 127.0.0.0/8
	CauseBadAnswer       Cause = "bad_answer"       // 127.0.0.1, another rcode, a malformed reply
	CauseNetwork         Cause = "network"          // the resolver could not be reached
)

// Result is the reading of one answer.
type Result struct {
	Status Status `json:"status"`
	// Codes are the A records answered, in answer order.
	Codes []string `json:"codes,omitempty"`
	// Meanings gives the catalogue meaning of each code, in the same order.
	Meanings []string `json:"meanings,omitempty"`
	// Cause, ErrorCode, Meaning, Rcode and Detail describe an Error.
	Cause Cause `json:"cause,omitempty"`
	// ErrorCode is the answer that made the result an error, if one did.
	ErrorCode string `json:"error_code,omitempty"`
	// Meaning is ErrorCode's meaning.
	Meaning string `json:"meaning,omitempty"`
	// Rcode is the response code when it was neither NOERROR nor NXDOMAIN.
	Rcode string `json:"rcode,omitempty"`
	// Detail explains the error for a person.
	Detail string `json:"detail,omitempty"`
}

// Failure builds an error result with a cause and a description.
func Failure(cause Cause, detail string) Result {
	return Result{Status: Error, Cause: cause, Detail: detail}
}

// Interpret reads the answer to an A query for a name of b: its response
// code and the A records of its answer section (after any CNAME). Only
// answers the zone certainly means as listings are Listed:
//
//   - NXDOMAIN, or NOERROR without A records: NotListed.
//   - SERVFAIL, REFUSED, any other code, or NXDOMAIN with A records: Error.
//   - An A record outside 127.0.0.0/8 makes the whole answer an Error with
//     cause nxdomain_rewrite: blocklists answer only inside 127/8, so a
//     public address comes from a resolver that rewrites NXDOMAIN.
//   - 127.0.0.1, or a code the catalogue classes as an error, makes the
//     whole answer an Error (error_code, or bad_answer for 127.0.0.1), even
//     if other records would be listings: an answer that is partly a
//     refusal is not trusted.
//   - Otherwise Listed, with each code's meaning.
func (b *Blocklist) Interpret(rcode int, answers []netip.Addr) Result {
	switch rcode {
	case RcodeNameError:
		if len(answers) > 0 {
			codes := addrStrings(answers)
			meanings := make([]string, len(codes))
			for i := range meanings {
				meanings[i] = "A record in an NXDOMAIN reply"
			}
			return Result{Status: Error, Cause: CauseBadAnswer, Rcode: "NXDOMAIN", Codes: codes, Meanings: meanings,
				Detail: "NXDOMAIN with A records in the answer: a broken resolver or zone"}
		}
		return Result{Status: NotListed}
	case RcodeSuccess:
	case RcodeServerFailure:
		return Result{Status: Error, Cause: CauseServfail, Rcode: "SERVFAIL", Detail: "the resolver answered SERVFAIL"}
	case RcodeRefused:
		return Result{Status: Error, Cause: CauseRefused, Rcode: "REFUSED", Detail: "the resolver refused the query"}
	default:
		name := RcodeName(rcode)
		return Result{Status: Error, Cause: CauseBadAnswer, Rcode: name, Detail: "unexpected response code " + name}
	}
	if len(answers) == 0 {
		return Result{Status: NotListed}
	}
	res := Result{Status: Listed, Codes: make([]string, len(answers)), Meanings: make([]string, len(answers))}
	var firstErr, rewrite, invalid int = -1, -1, -1
	for i, a := range answers {
		a = a.Unmap()
		res.Codes[i] = a.String()
		switch {
		case !a.Is4() || !loopback.Contains(a):
			res.Meanings[i] = "not a blocklist answer: outside 127.0.0.0/8"
			if rewrite < 0 {
				rewrite = i
			}
		case a == never:
			res.Meanings[i] = "never a valid answer (RFC 5782 section 2.1)"
			if invalid < 0 {
				invalid = i
			}
		default:
			c := b.Lookup(a)
			res.Meanings[i] = c.Meaning
			if c.Class == ClassError && firstErr < 0 {
				firstErr = i
			}
		}
	}
	switch {
	case rewrite >= 0:
		res.Status, res.Cause = Error, CauseNXDomainRewrite
		res.ErrorCode, res.Meaning = res.Codes[rewrite], res.Meanings[rewrite]
		res.Detail = fmt.Sprintf("%s answered %s, outside 127.0.0.0/8: the resolver rewrites NXDOMAIN (or something answers for it); no listing can be read from it",
			b.zone.Name, res.Codes[rewrite])
	case invalid >= 0:
		res.Status, res.Cause = Error, CauseBadAnswer
		res.ErrorCode, res.Meaning = res.Codes[invalid], res.Meanings[invalid]
		res.Detail = fmt.Sprintf("%s answered 127.0.0.1, which a blocklist never lists: the zone or the resolver is broken", b.zone.Name)
	case firstErr >= 0:
		res.Status, res.Cause = Error, CauseErrorCode
		res.ErrorCode, res.Meaning = res.Codes[firstErr], res.Meanings[firstErr]
		res.Detail = fmt.Sprintf("%s refused the query with error code %s: %s%s", b.zone.Name, res.ErrorCode, res.Meaning, b.errorHint(res.ErrorCode))
	}
	return res
}

// errorHint suggests a fix for the well-known Spamhaus refusals.
func (b *Blocklist) errorHint(code string) string {
	switch code {
	case "127.255.255.254":
		if b.zone.DQSZone != "" {
			return "; use a registered (non-public) resolver or a DQS key"
		}
		return "; use your own recursive resolver, not a public one"
	case "127.255.255.255":
		return "; lower the query rate or use a DQS key"
	}
	return ""
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Unmap().String()
	}
	return out
}

// TestOutcome is the result of one self-test query.
type TestOutcome struct {
	Target     Target
	WantListed bool
	Result     Result
}

// SelfTest judges a zone's test queries: every entry that must be listed is
// Listed and every entry that must not be is NotListed. It returns nil when
// the zone can be trusted, else an error result (cause selftest_failed)
// naming the first entry that failed and how. With no outcomes at all the
// zone is not trusted either.
func SelfTest(zone string, outcomes []TestOutcome) *Result {
	if len(outcomes) == 0 {
		r := Failure(CauseSelfTest, zone+": no self-test was run")
		return &r
	}
	for _, o := range outcomes {
		want := NotListed
		if o.WantListed {
			want = Listed
		}
		if o.Result.Status == want {
			continue
		}
		r := Failure(CauseSelfTest, "")
		r.ErrorCode, r.Meaning, r.Rcode = o.Result.ErrorCode, o.Result.Meaning, o.Result.Rcode
		got := string(o.Result.Status)
		switch o.Result.Status {
		case Listed:
			got = "listed (" + strings.Join(o.Result.Codes, ", ") + ")"
		case Error:
			got = "an error: " + o.Result.Detail
		}
		must := "must not be listed"
		if o.WantListed {
			must = "must be listed"
		}
		r.Detail = fmt.Sprintf("%s failed its self-test: test entry %s %s but was %s; the zone's answers are not trusted this sweep", zone, o.Target, must, got)
		return &r
	}
	return nil
}
