package schemas

import "time"

// Vocabulary of the suppression list.
const (
	// SuppressCustomerRecipient: one customer's mail to one address.
	SuppressCustomerRecipient = "customer_recipient"
	// SuppressGlobalRecipient: every customer's mail to one address.
	SuppressGlobalRecipient = "global_recipient"
	// SuppressCustomerDomain: one customer's mail to every address of a
	// recipient domain.
	SuppressCustomerDomain = "customer_domain"

	// Why an entry exists (SuppressionAdded.Reason).
	SuppressHardBounce  = "hard_bounce"
	SuppressSoftBounces = "soft_bounces"
	SuppressComplaint   = "complaint"
	SuppressManual      = "manual"
	SuppressUnsubscribe = "unsubscribe"

	// Why an entry ended (SuppressionRemoved.Cause).
	UnsuppressExpired   = "expired"
	UnsuppressDelivered = "delivered"
	UnsuppressManual    = "manual"
	UnsuppressReleased  = "released"
)

// SuppressionTarget says which entry of the suppression list an event is
// about. With suppression.hash_key set, addresses are kept only as keyed
// hashes: recipient is then empty and recipient_hash identifies it.
type SuppressionTarget struct {
	// Key is the entry's key in the KV bucket suppression, e.g.
	// "r.3f2a….9c1d…" (kind, owner, target): it joins the events of one
	// entry.
	Key string `json:"key"`
	// Scope is "customer_recipient", "global_recipient" or
	// "customer_domain".
	Scope string `json:"scope" ch:"lc" enum:"customer_recipient,global_recipient,customer_domain"`
	// Customer is the customer whose mail the entry stops; empty for a
	// global entry.
	Customer string `json:"customer,omitempty" ch:"lc"`
	// Recipient is the normalised address (for a domain entry, the domain),
	// or empty when addresses are stored hashed.
	Recipient string `json:"recipient,omitempty"`
	// RecipientHash is the hex digest of the normalised address (or
	// domain): HMAC-SHA256 under suppression.hash_key, else SHA-256; cut
	// to 128 bits.
	RecipientHash string `json:"recipient_hash"`
	// RecipientDomain is the recipient's domain, in ASCII (IDNA).
	RecipientDomain string `json:"recipient_domain" ch:"lc"`
}

// SuppressionAdded records that an address (or a domain) was put on a
// customer's suppression list, or on the global one: the policy service
// refuses mail to it at RCPT TO until it expires or is removed. Time is
// when the entry was written.
type SuppressionAdded struct {
	Header
	SuppressionTarget
	// Reason is why: "hard_bounce", "soft_bounces", "complaint", "manual"
	// or "unsubscribe".
	Reason string `json:"reason" ch:"lc" enum:"hard_bounce,soft_bounces,complaint,manual,unsubscribe"`
	// BounceReason is the bounce classifier's reason behind a bounce
	// entry, e.g. "userunknown".
	BounceReason string `json:"bounce_reason,omitempty" ch:"lc"`
	// BounceCategory is the bounce classifier's category behind a bounce
	// entry, e.g. "user_unknown".
	BounceCategory string `json:"bounce_category,omitempty" ch:"lc"`
	// Status is the enhanced status code of the bounce, e.g. "5.1.1".
	Status string `json:"status,omitempty" ch:"lc"`
	// Reply is the remote reply or diagnostic of the bounce, cut to 300
	// bytes.
	Reply string `json:"reply,omitempty"`
	// SourceEventIDs are the events that made the entry: the bounce,
	// delivery attempt(s) or complaint; empty for a manual entry.
	SourceEventIDs []string `json:"source_event_ids,omitempty"`
	// Expires is when the entry stops counting; absent when it lasts until
	// removed.
	Expires time.Time `json:"expires,omitzero"`
	// Operator names who added a manual or imported entry.
	Operator string `json:"operator,omitempty"`
	// Note is the operator's note, or the import's file name.
	Note string `json:"note,omitempty"`
}

// SuppressionRemoved records that an entry of the suppression list
// ended: it expired, a later delivery to the address succeeded, or an
// operator removed or released it. Time is when it was removed.
type SuppressionRemoved struct {
	Header
	SuppressionTarget
	// Cause is why it ended: "expired", "delivered", "manual" or
	// "released" (a bulk release by customer and reason).
	Cause string `json:"cause" ch:"lc" enum:"expired,delivered,manual,released"`
	// Reason is the reason of the entry that ended.
	Reason string `json:"reason" ch:"lc" enum:"hard_bounce,soft_bounces,complaint,manual,unsubscribe"`
	// AddedID is the id of the suppression.added event of the entry.
	AddedID string `json:"added_id"`
	// HeldMs is how long the entry was in force.
	HeldMs int64 `json:"held_ms"`
	// SourceEventIDs are the events that ended it: the successful
	// delivery attempt; empty otherwise.
	SourceEventIDs []string `json:"source_event_ids,omitempty"`
	// Operator names who removed or released it.
	Operator string `json:"operator,omitempty"`
	// Note is the operator's note.
	Note string `json:"note,omitempty"`
}
