package suppressor

import (
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

// Why an event, or one part of it, changed nothing: the why label of
// mailmon_suppressor_ignored_total.
const (
	// WhyNotFailed: a bounce.received whose DSN Action is not "failed"
	// (delayed, delivered, relayed, expanded).
	WhyNotFailed = "not_failed"
	// WhyUntraced: a bounce not traced to our own message by the verified
	// tracking header; anyone can mail a DSN naming any address.
	WhyUntraced = "untraced"
	// WhyTransient: a 4xx reply or 4.x.x status, a deferral, an expiry.
	WhyTransient = "transient"
	// WhyCategory: a permanent failure whose category has no expiry
	// configured: blocks, policy, content; about the sender, not the
	// address.
	WhyCategory = "category"
	// WhyBadAddress: a recipient that does not normalise.
	WhyBadAddress = "bad_address"
	// WhyRedacted: a complaint's recipient the provider redacted.
	WhyRedacted = "redacted"
	// WhyNoRecipient: a complaint without any Original-Rcpt-To.
	WhyNoRecipient = "no_recipient"
	// WhyTooManyRecipients: Original-Rcpt-To values past the first few.
	WhyTooManyRecipients = "too_many_recipients"
	// WhyNoTime: an event without a time (entries are dated by it).
	WhyNoTime = "no_time"
	// WhyProbe: a delivery of one of our own probes to a seed.
	WhyProbe = "probe"
	// WhyOwnReject: refused by our own MTA (status rejected), e.g. by the
	// policy service's suppression answer: never a fact about the address.
	WhyOwnReject = "own_reject"
	// WhyNotCounted: a complaint report that does not count (not-spam,
	// other feedback types).
	WhyNotCounted = "not_counted"
	// WhyUntrusted: a complaint report whose origin was not verified.
	WhyUntrusted = "untrusted"
	// WhyComplaintOff: expiry.complaint is not configured.
	WhyComplaintOff = "complaint_off"
	// WhyClearOff: a successful delivery with clear_on_delivery off.
	WhyClearOff = "clear_off"
	// WhySoftCounted: a soft failure counted, still below the count.
	WhySoftCounted = "soft_counted"
	// WhySoftDuplicate: a soft failure already counted (redelivery).
	WhySoftDuplicate = "soft_duplicate"
	// WhySoftMemoryFull: a soft failure of a new address while the
	// counts already track maxSoftKeys addresses.
	WhySoftMemoryFull = "soft_memory_full"
	// WhyKept: an entry that lasts at least as long was already stored.
	WhyKept = "kept_existing"
	// WhyOtherKind: an event of a kind the suppressor does not use.
	WhyOtherKind = "other_kind"
)

// maxComplaintRecipients bounds the Original-Rcpt-To values of one report
// that are used; ARF reports name one recipient.
const maxComplaintRecipients = 10

// maxSoftKeys bounds the addresses whose soft failures are counted at
// once; about 100 bytes each plus the failures.
const maxSoftKeys = 100_000

// Plan is what one event asks of the suppression list.
type Plan struct {
	// Adds are the entries to store (each replacing an older entry under
	// its key only when Replaces says so).
	Adds []suppression.Entry
	// Clear, when set, removes the bounce entries of one address.
	Clear *Clear
	// Ignored holds one why per part of the event that changed nothing.
	Ignored []string
	// softKeys are the keys whose soft-failure counts end once Adds are
	// stored.
	softKeys []string
}

// Clear removes the bounce-based entries of one address, for every
// customer and the global list: a delivery to it succeeded.
type Clear struct {
	// Digest is the address's digest (suppression.RecipientFilter).
	Digest string
	// At is the delivery's time: only entries created until then go.
	At time.Time
	// EventID is the delivery's event id: the cause id and the source of
	// the suppression.removed events.
	EventID string
}

// Keeps reports whether an entry under the address stays: anything but a
// bounce entry, and a bounce entry created after the delivery (a later
// bounce is newer news than this delivery). A bounce at the same instant
// goes: MTA logs stamp lines to the second, so a bounce and the success
// that followed it within that second have one time, and the address
// answering now is the news.
func (c Clear) Keeps(e suppression.Entry) bool {
	return !bounceReason(e.Reason) || e.Created.After(c.At)
}

// Replaces reports whether a new entry replaces the one stored under its
// key at now: an entry no longer in force always; otherwise only one
// that lasts longer (never expiring is longest), and a bounce never
// replaces a complaint, manual or unsubscribe entry, which an operator or
// the recipient made and which a delivery does not clear.
func Replaces(nw, old suppression.Entry, now time.Time) bool {
	if !old.Active(now) {
		return true
	}
	if bounceReason(nw.Reason) && !bounceReason(old.Reason) {
		return false
	}
	switch {
	case old.Expires.IsZero():
		return false
	case nw.Expires.IsZero():
		return true
	}
	return nw.Expires.After(old.Expires)
}

func bounceReason(r string) bool {
	return r == schemas.SuppressHardBounce || r == schemas.SuppressSoftBounces
}

// expiryKeys are the Expiry keys that are not bounce categories: a bounce
// claiming one of them as its category is not taken for it.
var expiryKeys = []string{suppression.ExpiryComplaint, suppression.ExpirySoftBounces, suppression.ExpiryManual, suppression.ExpiryUnsubscribe}

// Rules turns events into plans. It does no I/O; its only state is the
// soft-failure counts, kept in memory (lost at a restart: fewer
// suppressions, never more). Safe for concurrent use.
type Rules struct {
	cfg    suppression.Config
	hasher suppression.Hasher
	maxKey int

	mu sync.Mutex
	// soft counts soft failures by address digest, then entry key.
	soft  map[string]map[string][]failure
	nsoft int
}

type failure struct {
	id string
	at time.Time
	ev *schemas.DeliveryAttempted
}

// NewRules returns the rules of cfg.
func NewRules(cfg suppression.Config) *Rules {
	return &Rules{cfg: cfg, hasher: cfg.Hasher(), maxKey: maxSoftKeys, soft: map[string]map[string][]failure{}}
}

func ignore(why string) Plan { return Plan{Ignored: []string{why}} }

// Bounce judges one bounce.received: a failed recipient with a permanent
// status in a category that has an expiry, from a bounce traced to our own
// message by the verified tracking header, adds a hard_bounce entry.
func (r *Rules) Bounce(ev *schemas.BounceReceived) Plan {
	switch {
	case ev.Time.IsZero():
		return ignore(WhyNoTime)
	case !strings.EqualFold(ev.Action, "failed"):
		return ignore(WhyNotFailed)
	case ev.TraceMethod != schemas.TraceTrackingHeader:
		return ignore(WhyUntraced)
	case !permanent(ev.Status, ev.ReplyCode):
		return ignore(WhyTransient)
	}
	category := recipientCategory(ev.Category, ev.Status)
	expiry, ok := r.categoryExpiry(category)
	if !ok {
		return ignore(WhyCategory)
	}
	t, err := r.target(ev.Customer, ev.Recipient)
	if err != nil {
		return ignore(WhyBadAddress)
	}
	e := r.entry(t, schemas.SuppressHardBounce, ev.Time, expiry, []string{ev.ID})
	e.BounceReason, e.BounceCategory, e.Status = ev.Reason, category, ev.Status
	e.Reply = r.reply(ev.Diagnostic, t.Value)
	return Plan{Adds: []suppression.Entry{e}}
}

// Delivery judges one delivery.attempted: a permanent bounce (at RCPT or
// after DATA: Postfix logs both status=bounced) adds a hard_bounce entry;
// a successful one clears the address's bounce entries; soft failures
// count towards a soft_bounces entry when configured. Our probes and
// rejections by our own MTA never change the list.
func (r *Rules) Delivery(ev *schemas.DeliveryAttempted) Plan {
	switch {
	case ev.Time.IsZero():
		return ignore(WhyNoTime)
	case ev.ProbeID != "":
		return ignore(WhyProbe)
	}
	switch ev.Status {
	case schemas.StatusRejected:
		return ignore(WhyOwnReject)
	case schemas.StatusSent:
		if !r.cfg.ClearOnDelivery {
			return ignore(WhyClearOff)
		}
		addr, _, err := r.cfg.Normalize.Address(ev.Recipient)
		if err != nil {
			return ignore(WhyBadAddress)
		}
		digest := r.hasher.Digest(addr)
		r.forgetSoft(digest, ev.Time)
		return Plan{Clear: &Clear{Digest: digest, At: ev.Time, EventID: ev.ID}}
	case schemas.StatusBounced, schemas.StatusDeferred:
	default:
		return ignore(WhyTransient)
	}
	perm := ev.Status == schemas.StatusBounced && permanent(ev.DSN, ev.ReplyCode)
	if perm {
		category := recipientCategory(ev.Category, ev.DSN)
		if expiry, ok := r.categoryExpiry(category); ok {
			t, err := r.target(ev.Customer, ev.Recipient)
			if err != nil {
				return ignore(WhyBadAddress)
			}
			e := r.entry(t, schemas.SuppressHardBounce, ev.Time, expiry, []string{ev.ID})
			e.BounceReason, e.BounceCategory, e.Status = ev.Reason, category, ev.DSN
			e.Reply = r.reply(ev.Reply, t.Value)
			return Plan{Adds: []suppression.Entry{e}}
		}
	}
	if r.cfg.SoftBounces.Count > 0 && ev.Category != "" && slices.Contains(r.cfg.SoftBounces.Categories, ev.Category) {
		t, err := r.target(ev.Customer, ev.Recipient)
		if err != nil {
			return ignore(WhyBadAddress)
		}
		return r.softFailure(t, ev)
	}
	if perm {
		return ignore(WhyCategory)
	}
	return ignore(WhyTransient)
}

// Complaint judges one complaint.received: a counted, trusted report adds
// a complaint entry for each recipient it names in the clear.
func (r *Rules) Complaint(ev *schemas.ComplaintReceived) Plan {
	switch {
	case ev.Time.IsZero():
		return ignore(WhyNoTime)
	case !ev.Counted:
		return ignore(WhyNotCounted)
	case !ev.Trusted:
		return ignore(WhyUntrusted)
	case len(ev.OriginalRcptTo) == 0:
		return ignore(WhyNoRecipient)
	}
	expiry, ok := r.cfg.ExpiryFor(suppression.ExpiryComplaint)
	if !ok {
		return ignore(WhyComplaintOff)
	}
	var p Plan
	for i, rcpt := range ev.OriginalRcptTo {
		if i == maxComplaintRecipients {
			p.Ignored = append(p.Ignored, WhyTooManyRecipients)
			break
		}
		if redacted(rcpt) {
			p.Ignored = append(p.Ignored, WhyRedacted)
			continue
		}
		t, err := r.target(ev.Customer, rcpt)
		if err != nil {
			p.Ignored = append(p.Ignored, WhyBadAddress)
			continue
		}
		e := r.entry(t, schemas.SuppressComplaint, ev.Time, expiry, []string{ev.ID})
		if slices.ContainsFunc(p.Adds, func(a suppression.Entry) bool { return a.Key == e.Key }) {
			continue // the same address twice
		}
		p.Adds = append(p.Adds, e)
	}
	return p
}

// Stored tells the rules that a plan's entries are stored: the soft
// failures that made a soft_bounces entry are forgotten. Until then a
// redelivered failure finds them and plans the same entry again.
func (r *Rules) Stored(p Plan) {
	if len(p.softKeys) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, key := range p.softKeys {
		_, _, digest, _ := suppression.ParseKey(key)
		byKey := r.soft[digest]
		if _, ok := byKey[key]; ok {
			delete(byKey, key)
			r.nsoft--
		}
		if len(byKey) == 0 {
			delete(r.soft, digest)
		}
	}
}

// Prune forgets soft failures that fell out of the window at now.
func (r *Rules) Prune(now time.Time) {
	window := r.cfg.SoftBounces.Window.Std()
	r.mu.Lock()
	defer r.mu.Unlock()
	for digest, byKey := range r.soft {
		for key, fs := range byKey {
			if newest(fs).Add(window).Before(now) {
				delete(byKey, key)
				r.nsoft--
			}
		}
		if len(byKey) == 0 {
			delete(r.soft, digest)
		}
	}
}

// SoftTracked is the number of addresses with soft failures counted.
func (r *Rules) SoftTracked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nsoft
}

// softFailure counts one soft failure under t's key; at the count it plans
// a soft_bounces entry from the failures in the window.
func (r *Rules) softFailure(t suppression.Target, ev *schemas.DeliveryAttempted) Plan {
	key := r.hasher.Key(t)
	_, _, digest, _ := suppression.ParseKey(key)
	window := r.cfg.SoftBounces.Window.Std()
	count := r.cfg.SoftBounces.Count

	r.mu.Lock()
	defer r.mu.Unlock()
	byKey := r.soft[digest]
	fs, known := byKey[key]
	dup := slices.ContainsFunc(fs, func(f failure) bool { return f.id == ev.ID })
	switch {
	case dup && len(fs) < count:
		return ignore(WhySoftDuplicate)
	case !dup && !known && r.nsoft >= r.maxKey:
		return ignore(WhySoftMemoryFull)
	case !dup:
		fs = append(fs, failure{id: ev.ID, at: ev.Time, ev: ev})
		slices.SortFunc(fs, func(a, b failure) int { return a.at.Compare(b.at) })
		from := newest(fs).Add(-window)
		fs = slices.DeleteFunc(fs, func(f failure) bool { return !f.at.After(from) })
		if len(fs) > count {
			fs = fs[len(fs)-count:]
		}
		if byKey == nil {
			byKey = map[string][]failure{}
			r.soft[digest] = byKey
		}
		if !known {
			r.nsoft++
		}
		byKey[key] = fs
	}
	if len(fs) < count {
		return ignore(WhySoftCounted)
	}
	expiry, _ := r.cfg.ExpiryFor(suppression.ExpirySoftBounces)
	last := fs[len(fs)-1]
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.id
	}
	e := r.entry(t, schemas.SuppressSoftBounces, last.at, expiry, ids)
	e.BounceReason, e.BounceCategory, e.Status = last.ev.Reason, last.ev.Category, last.ev.DSN
	e.Reply = r.reply(last.ev.Reply, t.Value)
	return Plan{Adds: []suppression.Entry{e}, softKeys: []string{key}}
}

// forgetSoft drops the soft failures of an address before at: a delivery
// to it succeeded.
func (r *Rules) forgetSoft(digest string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byKey := r.soft[digest]
	for key, fs := range byKey {
		fs = slices.DeleteFunc(fs, func(f failure) bool { return f.at.Before(at) })
		if len(fs) == 0 {
			delete(byKey, key)
			r.nsoft--
			continue
		}
		byKey[key] = fs
	}
	if len(byKey) == 0 {
		delete(r.soft, digest)
	}
}

func newest(fs []failure) time.Time {
	var t time.Time
	for _, f := range fs {
		if f.at.After(t) {
			t = f.at
		}
	}
	return t
}

// recipientCategory is the category a permanent failure is judged by: the
// enhanced status code's when it names the recipient (RFC 3463: X.1.1 bad
// destination mailbox, X.1.2 bad destination system, X.1.10 null MX,
// RFC 7505; X.2.1 mailbox disabled), else the classifier's. The
// classifier's reason follows the SMTP stage too (an unknown user refused
// after DATA reads as "filtered"), which is right for reporting but says
// nothing less about the address.
func recipientCategory(category, status string) string {
	_, subjectDetail, ok := strings.Cut(status, ".")
	if !ok {
		return category
	}
	switch subjectDetail {
	case "1.1":
		return "user_unknown"
	case "1.2", "1.10":
		return "domain_unknown"
	case "2.1":
		return "mailbox_disabled"
	}
	return category
}

// categoryExpiry is how long a bounce of category suppresses; ok is false
// when the category never does.
func (r *Rules) categoryExpiry(category string) (time.Duration, bool) {
	if category == "" || slices.Contains(expiryKeys, category) {
		return 0, false
	}
	return r.cfg.ExpiryFor(category)
}

// target is where an automatic entry for customer's recipient goes: the
// configured scope, or the global list for an event without a customer.
func (r *Rules) target(customer, recipient string) (suppression.Target, error) {
	scope := r.cfg.Scope
	if customer == "" {
		scope = schemas.SuppressGlobalRecipient
	}
	return r.cfg.Normalize.TargetFor(scope, customer, recipient)
}

// entry builds an automatic entry created at the event's time; its added
// id derives from the key and the events, so a redelivery plans the same.
func (r *Rules) entry(t suppression.Target, reason string, at time.Time, expiry time.Duration, sources []string) suppression.Entry {
	var expires time.Time
	if expiry > 0 {
		expires = at.Add(expiry)
	}
	e := suppression.NewEntry(r.hasher, t, reason, at, expires)
	e.SourceEventIDs = sources
	e.AddedID = suppression.AddedID(at, e.Key, sources...)
	return e
}

// addressLike matches what looks like a mail address in a reply text.
var addressLike = regexp.MustCompile(`[^\s<>"'()\[\],;:]+@[^\s<>"'()\[\],;:]+`)

// reply is the reply text kept with an entry for addr, cut to size. With a
// hash key, addresses are kept nowhere in clear: every address-like word
// in it, and the recipient's local part however it is written, become
// "[address]".
func (r *Rules) reply(text, addr string) string {
	if !r.hasher.Keyed() || text == "" {
		return suppression.CutReply(text)
	}
	text = addressLike.ReplaceAllString(text, "[address]")
	if at := strings.LastIndexByte(addr, '@'); at >= 3 {
		local := regexp.QuoteMeta(addr[:at])
		text = regexp.MustCompile(`(?i)`+local).ReplaceAllString(text, "[address]")
	}
	return suppression.CutReply(text)
}

// permanent reports a permanent failure: an RFC 3463 status of class 5,
// or, without a status of class 2 or 4, an RFC 5321 reply code 5yz.
func permanent(status string, code uint16) bool {
	switch {
	case strings.HasPrefix(status, "5."):
		return true
	case strings.HasPrefix(status, "4."), strings.HasPrefix(status, "2."):
		return false
	}
	return code >= 500 && code < 600
}

// redacted reports a recipient a provider hid (RFC 6590): a local part
// saying "redacted", or made only of x, * or # characters.
func redacted(addr string) bool {
	a := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(addr), "<"), ">")
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return false
	}
	local := strings.ToLower(a[:at])
	if strings.Contains(local, "redacted") {
		return true
	}
	return len(local) >= 3 && strings.Trim(local, "x*#") == ""
}
