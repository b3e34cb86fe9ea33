package tracking

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Key is one HMAC key. ID travels in the header (k=) so a verifier knows
// which secret to use; it is not secret. Secret must be at least
// MinSecretLen bytes of random data and never leaves the mailmon
// deployment and the applications that sign.
type Key struct {
	ID     string
	Secret []byte
}

// Keyring holds the key that signs and the keys that still verify. To
// rotate: add a new Current and move the old one to Previous; keep it there
// as long as mail signed with it can still come back as a complaint or a
// bounce (weeks), then drop it.
type Keyring struct {
	Current  Key
	Previous []Key
}

// Validate reports a key with a bad id, a short secret, or an id used twice.
func (k Keyring) Validate() error {
	if err := k.Current.validate(); err != nil {
		return fmt.Errorf("current key: %w", err)
	}
	seen := map[string]bool{k.Current.ID: true}
	for i, key := range k.Previous {
		if err := key.validate(); err != nil {
			return fmt.Errorf("previous key %d: %w", i, err)
		}
		if seen[key.ID] {
			return fmt.Errorf("%w: id %q is used twice", ErrInvalidKey, key.ID)
		}
		seen[key.ID] = true
	}
	return nil
}

func (k Keyring) lookup(id string) (Key, bool) {
	if k.Current.ID == id {
		return k.Current, true
	}
	for _, key := range k.Previous {
		if key.ID == id {
			return key, true
		}
	}
	return Key{}, false
}

func (k Key) validate() error {
	if err := checkKeyID(k.ID); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if len(k.Secret) < MinSecretLen {
		return fmt.Errorf("%w: secret of key %q is %d bytes, want at least %d", ErrInvalidKey, k.ID, len(k.Secret), MinSecretLen)
	}
	return nil
}

// checkKeyID allows only characters that need no encoding in the header.
func checkKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Errorf("key id must be 1 to %d characters", MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key id %q may hold only letters, digits, '-', '_' and '.'", clip(id))
		}
	}
	return nil
}

// The methods below keep secrets out of every printed form of a Key or a
// Keyring: fmt with any verb, slog and JSON.

func (k Key) String() string {
	return "tracking.Key{ID: " + strconv.Quote(k.ID) + ", Secret: [REDACTED]}"
}

func (k Key) GoString() string { return k.String() }

func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("secret", "[REDACTED]"))
}

func (k Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}{k.ID, "[REDACTED]"})
}

func (k Keyring) String() string {
	ids := make([]string, len(k.Previous))
	for i, key := range k.Previous {
		ids[i] = strconv.Quote(key.ID)
	}
	return "tracking.Keyring{Current: " + strconv.Quote(k.Current.ID) + ", Previous: [" + strings.Join(ids, " ") + "]}"
}

func (k Keyring) GoString() string { return k.String() }

func (k Keyring) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

func (k Keyring) LogValue() slog.Value {
	ids := make([]string, len(k.Previous))
	for i, key := range k.Previous {
		ids[i] = key.ID
	}
	return slog.GroupValue(slog.String("current", k.Current.ID), slog.Any("previous", ids))
}
