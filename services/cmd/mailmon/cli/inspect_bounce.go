package cli

import (
	"context"
	"encoding/json"
	"io"

	"github.com/mailmon/mailmon/services/internal/dsn"
)

// inspectBounce prints one JSON object per failed or delayed recipient of
// a bounce, with its reason and category from the shared classifier, and
// nothing for a message that is not a bounce (an auto-reply, a delivery
// confirmation, anything else). An mbox is read message by message (see
// inspectARF for when input is taken as one, and for a message over the
// parser's budget).
func inspectBounce(ctx context.Context, in io.Reader, out io.Writer) error {
	raw, err := readMessage(in)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return eachMessage(ctx, in, raw, func(m []byte) error {
		b, err := dsn.Parse(m)
		if err != nil {
			return err
		}
		for _, v := range b.Views() {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	})
}
