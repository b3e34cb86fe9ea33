package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// Notification is what one route receives for one group: the alerts
// about one subject collected within group_wait.
type Notification struct {
	// Receiver is the route's name.
	Receiver string `json:"receiver"`
	// GroupKey is the subject the alerts are about.
	GroupKey string `json:"group_key"`
	// Status is "resolved" when every alert in the group is resolved,
	// else "firing".
	Status string                 `json:"status"`
	Alerts []*schemas.AlertRaised `json:"alerts"`
}

// accepts reports whether the route takes alert a, given what it was told
// of a's fingerprint so far (rs). Rules, customers and providers are
// allow-lists (empty takes all). min_severity holds back a firing below
// it, unless the route was told the condition fires: then a change of
// severity, even down, is news to it. A resolution is never held back by
// severity: it goes where its firing went.
func (r Route) accepts(a *schemas.AlertRaised, rs routeState) bool {
	if len(r.Rules) > 0 && !slices.Contains(r.Rules, a.Rule) {
		return false
	}
	if len(r.Customers) > 0 && !slices.Contains(r.Customers, a.Customer) {
		return false
	}
	if len(r.Providers) > 0 && !r.takesProviderOf(a) {
		return false
	}
	if a.Status == schemas.AlertResolved || rs.Status == schemas.AlertFiring {
		return true
	}
	return r.MinSeverity == "" || severityRank(a.Severity) >= severityRank(r.MinSeverity)
}

// takesProviderOf reports whether a is about one of the route's providers:
// its provider, or one of the providers it names as members.
func (r Route) takesProviderOf(a *schemas.AlertRaised) bool {
	if p := providerOf(a); p != "" && slices.Contains(r.Providers, p) {
		return true
	}
	for _, m := range membersOf(a) {
		if p, ok := strings.CutPrefix(m, "provider:"); ok && slices.Contains(r.Providers, p) {
			return true
		}
	}
	return false
}

// statusError is a route's answer other than 2xx. Every status is retried
// until max_age: a 4xx usually means a credential or a URL to fix, which
// an operator does while the alert waits.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("http status %d", e.code) }

// sender posts notifications to one route.
type sender struct {
	route  Route
	client *http.Client
	// now is the notifier's clock (an email's Date header).
	now func() time.Time
}

// send delivers one notification once, the way the route's kind does.
func (s *sender) send(ctx context.Context, n Notification) error {
	switch s.route.Kind {
	case KindWebhook, KindSlack, KindAlertmanager:
		return s.post(ctx, n)
	case KindEmail:
		return s.sendEmail(ctx, n)
	}
	return fmt.Errorf("route kind %q cannot send", s.route.Kind)
}

// post sends one notification as an HTTP POST once.
func (s *sender) post(ctx context.Context, n Notification) error {
	body, target, err := s.encode(n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("bad url") // never quote it: it may hold a credential
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mailmon-notifier")
	switch {
	case s.route.Token != "":
		req.Header.Set("Authorization", "Bearer "+s.route.Token.Reveal())
	case s.route.Username != "":
		req.SetBasicAuth(s.route.Username, s.route.Password.Reveal())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return statusError{resp.StatusCode}
}

func (s *sender) encode(n Notification) (body []byte, target string, err error) {
	target = s.route.URL.Reveal()
	switch s.route.Kind {
	case KindSlack:
		body, err = json.Marshal(map[string]string{"text": slackText(n)})
	case KindAlertmanager:
		target = strings.TrimSuffix(target, "/")
		if !strings.HasSuffix(target, "/api/v2/alerts") {
			target += "/api/v2/alerts"
		}
		body, err = json.Marshal(alertmanagerAlerts(n))
	default:
		body, err = json.Marshal(n)
	}
	return body, target, err
}

func slackText(n Notification) string {
	var b strings.Builder
	for i, a := range n.Alerts {
		if i > 0 {
			b.WriteByte('\n')
		}
		mark := ":rotating_light:"
		switch {
		case a.Status == schemas.AlertResolved:
			mark = ":white_check_mark:"
		case a.Severity == schemas.AlertWarning:
			mark = ":warning:"
		case a.Severity == schemas.AlertInfo:
			mark = ":information_source:"
		}
		fmt.Fprintf(&b, "%s [%s] *%s* %s (%s)", mark, strings.ToUpper(a.Status), a.Subject, a.Summary, a.Rule)
	}
	return b.String()
}

// amAlert is one alert of the Alertmanager API v2 (postableAlert).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertmanagerAlerts maps alerts to Alertmanager's. The labels identify
// the condition (rule, dedupe key, subject, severity), so the resolved
// notice, which carries an endsAt, closes the firing one.
func alertmanagerAlerts(n Notification) []amAlert {
	out := make([]amAlert, 0, len(n.Alerts))
	for _, a := range n.Alerts {
		labels := map[string]string{
			"alertname":  a.Rule,
			"dedupe_key": a.DedupeKey,
			"subject":    a.Subject,
			"severity":   a.Severity,
			"source":     "mailmon",
		}
		// The provider, from evidence too: it sets a rejection burst at one
		// provider apart from one at another (two conditions, fingerprintOf),
		// so Alertmanager must not merge them.
		for k, v := range map[string]string{"customer": a.Customer, "source_ip": a.SourceIP, "provider": providerOf(a)} {
			if v != "" {
				labels[k] = v
			}
		}
		ann := map[string]string{"summary": a.Summary, "event_id": a.ID}
		if a.DecisionID != "" {
			ann["decision_id"] = a.DecisionID
		}
		for i, name := range a.EvidenceNames {
			if i < len(a.EvidenceValues) {
				ann["evidence_"+name] = a.EvidenceValues[i]
			}
		}
		am := amAlert{Labels: labels, Annotations: ann, StartsAt: a.Time}
		if a.Status == schemas.AlertResolved {
			end := a.Time
			am.EndsAt = &end
		}
		out = append(out, am)
	}
	return out
}
