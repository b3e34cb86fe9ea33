package tracking_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas/tracking"
)

func Example() {
	// In production the secrets come from configuration; at least 32
	// random bytes each.
	keys := tracking.Keyring{
		Current:  tracking.Key{ID: "2024-06", Secret: []byte("current-secret-of-32-bytes-or-more")},
		Previous: []tracking.Key{{ID: "2024-01", Secret: []byte("previous-secret-still-verifying!!")}},
	}
	sent := time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)

	// The sending application adds the header to each message.
	value, err := keys.Sign(tracking.Fields{
		Customer:  "acme",
		Source:    "192.0.2.10",
		MessageID: "0190f0c2-7b1e-7c3a-9d2e-4f5a6b7c8d9e",
		Time:      sent,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(tracking.HeaderName + ": " + value)

	// Days later a complaint quotes the message, header folded in transit.
	quoted := strings.ReplaceAll(value, "; ", ";\r\n ")
	f, err := keys.Verify(quoted, sent.Add(72*time.Hour), 30*24*time.Hour)
	fmt.Println(f.Customer, f.Source, f.MessageID, err)

	// A header edited to blame another customer is refused.
	forged := strings.Replace(value, "c=acme", "c=globex", 1)
	_, err = keys.Verify(forged, sent.Add(72*time.Hour), 30*24*time.Hour)
	fmt.Println(errors.Is(err, tracking.ErrTampered))

	// Output:
	// X-Mailmon-Track: v=1; k=2024-06; c=acme; s=192.0.2.10; m=0190f0c2-7b1e-7c3a-9d2e-4f5a6b7c8d9e; t=1718020800; h=yyuwjiq8lNIJW_VlgQeDDJWNP-xEVI_OFkVIyWoYL8M
	// acme 192.0.2.10 0190f0c2-7b1e-7c3a-9d2e-4f5a6b7c8d9e <nil>
	// true
}
