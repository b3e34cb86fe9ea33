package console

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

// Suppression is the /suppression page: the suppression list's entries
// in force by customer and reason, its changes in the range, and a lookup
// of one address in the bucket.
type Suppression struct {
	Meta
	// InForce counts the entries in force by customer (empty: the global
	// list) and reason: suppression_added events that no
	// suppression_removed event names and that have not expired. It
	// counts what reached ClickHouse; the bucket is the list itself.
	InForce []SuppressionCount `json:"in_force"`
	// Added counts the additions in the range by reason, Removed the
	// removals by cause (expired, delivered, manual, released).
	Added   map[string]uint64 `json:"added"`
	Removed map[string]uint64 `json:"removed"`
	// LatestAdded and LatestRemoved are the range's latest changes, newest
	// first (console.rows of each).
	LatestAdded   []SuppressionChange `json:"latest_added"`
	LatestRemoved []SuppressionChange `json:"latest_removed"`
	// Hashed says addresses are kept as keyed digests
	// (suppression.hash_key): changes show recipient_hash, and a lookup
	// hashes the address it is given.
	Hashed bool `json:"hashed"`
	// Lookup is the answer for ?address= (with ?customer=), read from the
	// suppression bucket.
	Lookup *SuppressionLookup `json:"lookup,omitempty"`
}

// SuppressionCount is the number of entries of a customer and reason.
type SuppressionCount struct {
	Customer string `json:"customer"`
	Reason   string `json:"reason"`
	Entries  uint64 `json:"entries"`
}

// SuppressionChange is one suppression.added or .removed event.
type SuppressionChange struct {
	Time     time.Time `json:"time"`
	Customer string    `json:"customer"`
	Scope    string    `json:"scope"`
	Reason   string    `json:"reason"`
	// Cause is why a removed entry ended; empty for an addition.
	Cause           string `json:"cause,omitempty"`
	RecipientDomain string `json:"recipient_domain"`
	// Recipient is the address (or domain) when kept in clear, else
	// RecipientHash identifies it.
	Recipient     string `json:"recipient,omitempty"`
	RecipientHash string `json:"recipient_hash"`
	// Expires is when an added entry ends; zero for never (and for
	// removals).
	Expires  time.Time `json:"expires"`
	Operator string    `json:"operator,omitempty"`
}

// SuppressionLookup is what the bucket holds for an address: the keys the
// policy service checks for it and the entry under each.
type SuppressionLookup struct {
	Address  string `json:"address"`
	Customer string `json:"customer,omitempty"`
	// Normalized is the address as entries are keyed by; Error says why
	// the address could not be looked up.
	Normalized string `json:"normalized,omitempty"`
	Error      string `json:"error,omitempty"`
	// DryRun: the customer's entries are counted, not enforced.
	DryRun bool             `json:"dry_run"`
	Keys   []SuppressionKey `json:"keys"`
	// Suppressed: an entry in force under one of the keys.
	Suppressed bool `json:"suppressed"`
}

// SuppressionKey is one key checked and the entry under it, if any.
type SuppressionKey struct {
	Scope string `json:"scope"`
	Key   string `json:"key"`
	// Found: an entry is stored; Active: it is in force now (not expired).
	Found          bool      `json:"found"`
	Active         bool      `json:"active"`
	Reason         string    `json:"reason,omitempty"`
	BounceCategory string    `json:"bounce_category,omitempty"`
	Status         string    `json:"status,omitempty"`
	Reply          string    `json:"reply,omitempty"`
	SourceEventIDs []string  `json:"source_event_ids,omitempty"`
	Created        time.Time `json:"created"`
	Expires        time.Time `json:"expires"`
	Operator       string    `json:"operator,omitempty"`
	// RemoveCommand ends the entry; the console does not write.
	RemoveCommand string `json:"remove_command,omitempty"`
}

// suppression builds /suppression. address is the lookup's ?address=.
func (s source) suppression(ctx context.Context, p Params, address string) (Suppression, error) {
	out := Suppression{Meta: Meta{Page: "suppression", Params: p, Now: s.now}, Hashed: s.cfg.Suppression.Hasher().Keyed(),
		Added: map[string]uint64{}, Removed: map[string]uint64{}}
	if address = strings.TrimSpace(address); address != "" {
		out.Lookup = s.lookupSuppression(ctx, &out.Meta, address, p.Customer)
	}

	// In force: every addition that no removal names and that has not
	// expired. Entries last for months or for ever, so this reads the
	// whole of suppression_added (three columns, ordered by customer),
	// with the set of removed ids; the customer filter narrows both.
	removed, removedArgs := "SELECT added_id FROM suppression_removed", []any{}
	if p.Customer != "" {
		removed, removedArgs = removed+" WHERE customer = ?", []any{p.Customer}
	}
	inForce := &filter{}
	inForce.add("(toUInt32(expires) = 0 OR expires > ?)", s.now).addIf("customer", p.Customer)
	q, err := s.conn.Query(ctx, `SELECT customer, reason, uniqExact(id) FROM suppression_added`+inForce.where()+`
		AND id NOT IN (`+removed+`)
		GROUP BY customer, reason ORDER BY customer, reason LIMIT ?`, append(append(inForce.args, removedArgs...), s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("suppression entries: %w", err)
	}
	for q.Next() {
		var c SuppressionCount
		if err := q.Scan(&c.Customer, &c.Reason, &c.Entries); err != nil {
			q.Close()
			return out, fmt.Errorf("suppression entries: %w", err)
		}
		out.InForce = append(out.InForce, c)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return out, fmt.Errorf("suppression entries: %w", err)
	}

	rf := &filter{}
	rf.add("time >= ? AND time <= ?", p.From, p.To).addIf("customer", p.Customer)
	for _, t := range []struct {
		table, by string
		into      map[string]uint64
	}{{"suppression_added", "reason", out.Added}, {"suppression_removed", "cause", out.Removed}} {
		q, err := s.conn.Query(ctx, `SELECT `+t.by+`, uniqExact(id) FROM `+t.table+rf.where()+` GROUP BY `+t.by, rf.args...)
		if err != nil {
			return out, fmt.Errorf("%s: %w", t.table, err)
		}
		for q.Next() {
			var k string
			var n uint64
			if err := q.Scan(&k, &n); err != nil {
				q.Close()
				return out, fmt.Errorf("%s: %w", t.table, err)
			}
			t.into[k] = n
		}
		q.Close()
	}

	// The latest changes; a re-delivered copy of an event has its id, and
	// LIMIT 1 BY id keeps one (a top-N sort: a third of grouping every id
	// of the range, measured over a million additions in 30 days).
	q, err = s.conn.Query(ctx, `SELECT time, customer, scope, reason, recipient_domain, recipient, recipient_hash, expires, operator
		FROM suppression_added`+rf.where()+` ORDER BY time DESC, id LIMIT 1 BY id LIMIT ?`,
		append(rf.args, s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("latest additions: %w", err)
	}
	for q.Next() {
		var c SuppressionChange
		if err := q.Scan(&c.Time, &c.Customer, &c.Scope, &c.Reason, &c.RecipientDomain, &c.Recipient, &c.RecipientHash, &c.Expires, &c.Operator); err != nil {
			q.Close()
			return out, fmt.Errorf("latest additions: %w", err)
		}
		out.LatestAdded = append(out.LatestAdded, c.clean())
	}
	q.Close()
	q, err = s.conn.Query(ctx, `SELECT time, customer, scope, reason, cause, recipient_domain, recipient, recipient_hash, operator
		FROM suppression_removed`+rf.where()+` ORDER BY time DESC, id LIMIT 1 BY id LIMIT ?`,
		append(rf.args, s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("latest removals: %w", err)
	}
	defer q.Close()
	for q.Next() {
		var c SuppressionChange
		if err := q.Scan(&c.Time, &c.Customer, &c.Scope, &c.Reason, &c.Cause, &c.RecipientDomain, &c.Recipient, &c.RecipientHash, &c.Operator); err != nil {
			return out, fmt.Errorf("latest removals: %w", err)
		}
		out.LatestRemoved = append(out.LatestRemoved, c.clean())
	}
	return out, q.Err()
}

// clean puts times in UTC and reads ClickHouse's 1970-01-01 (a zero time)
// as never.
func (c SuppressionChange) clean() SuppressionChange {
	c.Time = c.Time.UTC()
	if c.Expires.Unix() <= 0 {
		c.Expires = time.Time{}
	} else {
		c.Expires = c.Expires.UTC()
	}
	return c
}

// lookupSuppression reads the three keys the policy service checks for
// address and customer from the bucket. What cannot be read is a note or
// the lookup's error, not a failed page.
func (s source) lookupSuppression(ctx context.Context, m *Meta, address, customer string) *SuppressionLookup {
	cfg := s.cfg.Suppression
	l := &SuppressionLookup{Address: address, Customer: customer, DryRun: cfg.DryRun(customer)}
	addr, domain, err := cfg.Normalize.Address(address)
	if err != nil {
		l.Error = err.Error()
		return l
	}
	l.Normalized = addr
	for _, k := range cfg.Hasher().RequestKeys(customer, addr, domain) {
		l.Keys = append(l.Keys, SuppressionKey{Scope: k.Scope, Key: k.Key})
	}
	kv, err := s.kv(ctx, suppression.Bucket)
	if err != nil {
		m.Notes = append(m.Notes, fmt.Sprintf("lookup not possible: bucket %s: %v", suppression.Bucket, err))
		l.Error = "the suppression bucket could not be read"
		return l
	}
	for i := range l.Keys {
		k := &l.Keys[i]
		e, _, found, err := suppression.Get(ctx, kv, k.Key)
		if err != nil {
			m.Notes = append(m.Notes, fmt.Sprintf("lookup of %s: %v", k.Scope, err))
			continue
		}
		if !found {
			continue
		}
		k.Found, k.Active = true, e.Active(s.now)
		k.Reason, k.BounceCategory, k.Status, k.Reply = e.Reason, e.BounceCategory, e.Status, e.Reply
		k.SourceEventIDs, k.Created, k.Expires, k.Operator = e.SourceEventIDs, e.Created, e.Expires, e.Operator
		k.RemoveCommand = SuppressionRemoveCommand(k.Scope, customer, addr, domain)
		l.Suppressed = l.Suppressed || k.Active
	}
	return l
}

// SuppressionRemoveCommand is the command that removes an entry of scope.
func SuppressionRemoveCommand(scope, customer, addr, domain string) string {
	switch scope {
	case schemas.SuppressGlobalRecipient:
		return "mailmon suppression remove " + suppressionShellWord(addr) + " -global"
	case schemas.SuppressCustomerDomain:
		return "mailmon suppression remove " + suppressionShellWord(domain) + " -customer " + suppressionShellWord(customer) + " -domain"
	}
	return "mailmon suppression remove " + suppressionShellWord(addr) + " -customer " + suppressionShellWord(customer)
}

// suppressionShellWord quotes s for a POSIX shell unless it is a plain word.
func suppressionShellWord(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@._+-=[]:", c)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
