package suppression

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/mailmon/mailmon/schemas"
)

// Bucket is the KV bucket that holds the suppression lists.
const Bucket = "suppression"

// ownerAll is the owner token of the global list.
const ownerAll = "all"

// Hasher computes the digests entries are keyed by. The zero value hashes
// with SHA-256; with a key, HMAC-SHA256 under it, so nobody without the
// key can tell whether an address is listed.
type Hasher struct{ key []byte }

// NewHasher returns a Hasher for key (empty: plain SHA-256).
func NewHasher(key string) Hasher { return Hasher{key: []byte(key)} }

// Keyed reports whether addresses are hashed under a secret key (and so
// are kept nowhere in clear).
func (h Hasher) Keyed() bool { return len(h.key) > 0 }

// Digest is the 128-bit hex digest of a normalised address or domain.
func (h Hasher) Digest(s string) string {
	var sum []byte
	if h.Keyed() {
		m := hmac.New(sha256.New, h.key)
		m.Write([]byte(s))
		sum = m.Sum(nil)
	} else {
		d := sha256.Sum256([]byte(s))
		sum = d[:]
	}
	return hex.EncodeToString(sum[:16])
}

// Owner is the key token of a customer's list: 64 bits of SHA-256 of its
// name. Customer names are not secret; hashing them only makes any name a
// valid key token.
func Owner(customer string) string {
	if customer == "" {
		return ownerAll
	}
	d := sha256.Sum256([]byte("customer\x00" + customer))
	return hex.EncodeToString(d[:8])
}

// Target names what an entry is about, before hashing.
type Target struct {
	// Scope is schemas.SuppressCustomerRecipient, SuppressGlobalRecipient
	// or SuppressCustomerDomain.
	Scope string
	// Customer is empty for the global scope.
	Customer string
	// Value is the normalised address, or the domain for a domain entry.
	Value string
	// Domain is the recipient domain (Value itself for a domain entry).
	Domain string
}

// Key is the bucket key of the entry for t.
func (h Hasher) Key(t Target) string {
	return KeyOf(t.Scope, t.Customer, h.Digest(t.Value))
}

// KeyOf builds a bucket key from its parts: the scope, the customer (empty
// for global) and the target's digest.
func KeyOf(scope, customer, digest string) string {
	kind := "r"
	if scope == schemas.SuppressCustomerDomain {
		kind = "d"
	}
	owner := Owner(customer)
	if scope == schemas.SuppressGlobalRecipient {
		owner = ownerAll
	}
	return kind + "." + owner + "." + digest
}

// CustomerFilter is the KV key filter of every entry of one customer.
func CustomerFilter(customer string) []string {
	o := Owner(customer)
	return []string{"r." + o + ".*", "d." + o + ".*"}
}

// RecipientFilter is the KV key filter of every entry (any customer,
// global) for one address digest.
func RecipientFilter(digest string) string { return "r.*." + digest }

// ParseKey splits a bucket key; ok is false for anything that is not one.
func ParseKey(key string) (kind, owner, digest string, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 || (parts[0] != "r" && parts[0] != "d") || len(parts[2]) != 32 ||
		(parts[1] != ownerAll && len(parts[1]) != 16) {
		return "", "", "", false
	}
	if !isHex(parts[2]) || (parts[1] != ownerAll && !isHex(parts[1])) {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// SetKey is the 64-bit FNV-1a hash of a bucket key: what the policy
// service's in-memory set holds instead of the key. The key already ends
// in a cryptographic digest, so 64 bits of it make a false match about
// one in 10^12 per lookup at ten million entries.
//
// It is FNV-1a written out over the string, as hash/fnv computes it, so a
// request's three lookups allocate nothing.
func SetKey(key string) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime64
	}
	return h
}

// RequestKey is one key a message is checked under, with its scope.
type RequestKey struct {
	Scope string
	Key   string
}

// RequestKeys are the keys a message for customer (empty when unknown) to
// the normalised address rcpt at domain could be suppressed under, in
// this order: the customer's address entry, the customer's domain entry,
// the global address entry. The policy service checks them, and the
// console and `mailmon suppression explain` show them.
func (h Hasher) RequestKeys(customer, rcpt, domain string) []RequestKey {
	digest := h.Digest(rcpt)
	global := RequestKey{schemas.SuppressGlobalRecipient, KeyOf(schemas.SuppressGlobalRecipient, "", digest)}
	if customer == "" {
		return []RequestKey{global}
	}
	return []RequestKey{
		{schemas.SuppressCustomerRecipient, KeyOf(schemas.SuppressCustomerRecipient, customer, digest)},
		{schemas.SuppressCustomerDomain, KeyOf(schemas.SuppressCustomerDomain, customer, h.Digest(domain))},
		global,
	}
}

// TargetFor builds the target of scope for a recipient address (or, for
// the domain scope, a domain or an address whose domain is meant).
func (n Normalizer) TargetFor(scope, customer, recipient string) (Target, error) {
	switch scope {
	case schemas.SuppressCustomerRecipient, schemas.SuppressCustomerDomain:
		if customer == "" {
			return Target{}, fmt.Errorf("scope %s needs a customer", scope)
		}
	case schemas.SuppressGlobalRecipient:
		customer = ""
	default:
		return Target{}, fmt.Errorf("unknown scope %q", scope)
	}
	if scope == schemas.SuppressCustomerDomain {
		d := recipient
		if at := strings.LastIndexByte(d, '@'); at >= 0 {
			d = d[at+1:]
		}
		domain, err := n.Domain(d)
		if err != nil {
			return Target{}, err
		}
		return Target{Scope: scope, Customer: customer, Value: domain, Domain: domain}, nil
	}
	addr, domain, err := n.Address(recipient)
	if err != nil {
		return Target{}, err
	}
	return Target{Scope: scope, Customer: customer, Value: addr, Domain: domain}, nil
}
