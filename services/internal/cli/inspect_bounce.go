package cli

import (
	"encoding/json"
	"io"

	"github.com/mailmon/mailmon/services/internal/dsn"
)

// inspectBounce prints one JSON object per failed or delayed recipient of
// a bounce, with its reason and category from the shared classifier, and
// nothing for a message that is not a bounce (an auto-reply, a delivery
// confirmation, anything else). An mbox is read message by message (see
// inspectARF for when input is taken as one).
func inspectBounce(in io.Reader, out io.Writer) error {
	raw, err := readMessage(in)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for _, m := range messagesOf(in, raw) {
		for _, v := range dsn.Parse(m).Views() {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
	}
	return nil
}
