package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Errors Parse wraps, one per reason a document is refused.
var (
	// ErrNotJSON: the document is not a JSON object.
	ErrNotJSON = errors.New("not a JSON object")
	// ErrNoPolicies: the object has no "policies" array.
	ErrNoPolicies = errors.New("no policies")
	// ErrBadValue: a date or count that cannot be read, or a member of
	// the wrong JSON type.
	ErrBadValue = errors.New("bad value")
)

// Report is one SMTP TLS report.
type Report struct {
	// Organization is "organization-name", ContactInfo "contact-info" and
	// ReportID "report-id", trimmed.
	Organization, ContactInfo, ReportID string
	// Begin and End are the "date-range", in UTC (zero when absent).
	Begin, End time.Time
	Policies   []Policy
}

// Policy is one element of "policies": the sessions to one policy domain.
type Policy struct {
	// Type is "policy-type" ("sts", "tlsa", "no-policy-found") and Domain
	// "policy-domain", lower-cased.
	Type, Domain string
	// Strings are the "policy-string" lines, MXHosts the "mx-host"
	// patterns.
	Strings, MXHosts []string
	// Success and Failure are the summary's session counts.
	Success, Failure uint64
	// Failures are the "failure-details".
	Failures []Failure
}

// Failure is one element of "failure-details".
type Failure struct {
	ResultType, SendingMTAIP, ReceivingMXHostname, ReceivingMXHelo, ReceivingIP string
	FailedSessions                                                              uint64
	AdditionalInformation, FailureReasonCode                                    string
}

// count reads a session count: a JSON number, or (from careless
// reporters) a number in a string or with a zero fraction ("5", 5.0).
type count uint64

func (c *count) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(strings.Trim(strings.TrimSpace(string(b)), `"`))
	if s == "null" || s == "" {
		*c = 0
		return nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		*c = count(n)
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1<<63 && f == math.Trunc(f) {
		*c = count(f)
		return nil
	}
	return fmt.Errorf("%w: count %s", ErrBadValue, b)
}

// strings1 reads a JSON array of strings or one string.
type strings1 []string

func (s *strings1) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = strings1{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

type jsonReport struct {
	Organization string `json:"organization-name"`
	DateRange    struct {
		Start string `json:"start-datetime"`
		End   string `json:"end-datetime"`
	} `json:"date-range"`
	ContactInfo string `json:"contact-info"`
	ReportID    string `json:"report-id"`
	Policies    *[]struct {
		Policy struct {
			Type    string   `json:"policy-type"`
			Strings strings1 `json:"policy-string"`
			Domain  string   `json:"policy-domain"`
			MXHost  strings1 `json:"mx-host"`
		} `json:"policy"`
		Summary struct {
			Success count `json:"total-successful-session-count"`
			Failure count `json:"total-failure-session-count"`
		} `json:"summary"`
		FailureDetails []struct {
			ResultType            string `json:"result-type"`
			SendingMTAIP          string `json:"sending-mta-ip"`
			ReceivingMXHostname   string `json:"receiving-mx-hostname"`
			ReceivingMXHelo       string `json:"receiving-mx-helo"`
			ReceivingIP           string `json:"receiving-ip"`
			FailedSessions        count  `json:"failed-session-count"`
			AdditionalInformation string `json:"additional-information"`
			FailureReasonCode     string `json:"failure-reason-code"`
		} `json:"failure-details"`
	} `json:"policies"`
}

// Parse reads one SMTP TLS report document (decompressed JSON). See the
// package documentation for what it tolerates and what it refuses.
func Parse(doc []byte) (*Report, error) {
	start := bytes.IndexByte(doc, '{')
	if start < 0 {
		return nil, fmt.Errorf("%w: no '{'", ErrNotJSON)
	}
	var j jsonReport
	// A Decoder reads the first value and leaves what follows it.
	if err := json.NewDecoder(bytes.NewReader(doc[start:])).Decode(&j); err != nil {
		if errors.Is(err, ErrBadValue) {
			return nil, err
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%w: %v", ErrBadValue, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if j.Policies == nil {
		return nil, ErrNoPolicies
	}
	r := &Report{
		Organization: strings.TrimSpace(j.Organization),
		ContactInfo:  strings.TrimSpace(j.ContactInfo),
		ReportID:     strings.TrimSpace(j.ReportID),
	}
	var err error
	if r.Begin, err = parseTime("start-datetime", j.DateRange.Start); err != nil {
		return nil, err
	}
	if r.End, err = parseTime("end-datetime", j.DateRange.End); err != nil {
		return nil, err
	}
	r.Policies = make([]Policy, 0, len(*j.Policies))
	for _, p := range *j.Policies {
		pol := Policy{
			Type:    strings.ToLower(strings.TrimSpace(p.Policy.Type)),
			Domain:  strings.ToLower(strings.TrimSpace(p.Policy.Domain)),
			Strings: []string(p.Policy.Strings),
			MXHosts: []string(p.Policy.MXHost),
			Success: uint64(p.Summary.Success),
			Failure: uint64(p.Summary.Failure),
		}
		for _, f := range p.FailureDetails {
			pol.Failures = append(pol.Failures, Failure{
				ResultType:            strings.ToLower(strings.TrimSpace(f.ResultType)),
				SendingMTAIP:          strings.TrimSpace(f.SendingMTAIP),
				ReceivingMXHostname:   strings.ToLower(strings.TrimSpace(f.ReceivingMXHostname)),
				ReceivingMXHelo:       strings.TrimSpace(f.ReceivingMXHelo),
				ReceivingIP:           strings.TrimSpace(f.ReceivingIP),
				FailedSessions:        uint64(f.FailedSessions),
				AdditionalInformation: f.AdditionalInformation,
				FailureReasonCode:     f.FailureReasonCode,
			})
		}
		r.Policies = append(r.Policies, pol)
	}
	return r, nil
}

// timeLayouts are the forms of a "date-range" bound: RFC 3339, and the
// same without a zone (taken as UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05"}

func parseTime(what, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %s %q", ErrBadValue, what, s)
}
