package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
)

// userCheckCLI is the NATS user of `mailmon check` (pipelines/access.yaml):
// it reads the PROBE and ALERT streams and the silences, and writes
// nothing, so a monitoring host holding its password can change nothing.
const userCheckCLI = "check-cli"

// maxCheckMessages bounds what one check reads; a window holding more is
// UNKNOWN (narrow -window) rather than a check that runs for minutes.
const maxCheckMessages = 1_000_000

// checkFlags are the flags every `mailmon check` shares.
type checkFlags struct {
	*flags
	window  time.Duration
	timeout time.Duration
}

func newCheckFlags(name string, errOut io.Writer, window time.Duration) *checkFlags {
	f := &checkFlags{flags: newFlags("check "+name, errOut)}
	f.fs.DurationVar(&f.window, "window", window, "how far back to read")
	f.fs.DurationVar(&f.timeout, "timeout", 20*time.Second, "give up (UNKNOWN) after this long")
	return f
}

// parse parses args and loads the config; on a problem it returns the
// UNKNOWN result to print.
func (f *checkFlags) parse(service string, args []string) (app.Config, *pluginResult) {
	if err := f.fs.Parse(args); err != nil {
		r := unknown(service, fmt.Errorf("usage: %v", err))
		if errors.Is(err, flag.ErrHelp) {
			r = unknown(service, errors.New("usage: see mailmon check -h"))
		}
		return app.Config{}, &r
	}
	if f.fs.NArg() > 0 {
		r := unknown(service, fmt.Errorf("usage: unexpected arguments %v", f.fs.Args()))
		return app.Config{}, &r
	}
	if f.window <= 0 || f.timeout <= 0 {
		r := unknown(service, errors.New("usage: -window and -timeout must be positive"))
		return app.Config{}, &r
	}
	cfg, err := app.Load(f.config)
	if err != nil {
		r := unknown(service, fmt.Errorf("config %s: %v", f.config, err))
		return app.Config{}, &r
	}
	return cfg, nil
}

// readEvents decodes every message of stream under subject stored since
// start, in stream order, through an ordered consumer, and returns how many
// messages did not decode. It stops at the messages that were in the
// stream when it started reading and after them.
func readEvents(ctx context.Context, js jetstream.JetStream, stream, subject string, start time.Time, each func(schemas.Event)) (undecodable int, err error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", stream, err)
	}
	info := cons.CachedInfo()
	if info == nil {
		return 0, fmt.Errorf("read %s: no consumer info", stream)
	}
	if info.NumPending == 0 {
		return 0, nil
	}
	if info.NumPending > maxCheckMessages {
		return 0, fmt.Errorf("%s holds %d messages in the window, more than the %d a check reads: narrow -window", stream, info.NumPending, maxCheckMessages)
	}
	iter, err := cons.Messages()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", stream, err)
	}
	defer iter.Stop()
	for n := 0; ; n++ {
		if n >= maxCheckMessages {
			return undecodable, fmt.Errorf("%s: more than %d messages in the window: narrow -window", stream, maxCheckMessages)
		}
		msg, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			return undecodable, fmt.Errorf("read %s: %w", stream, err)
		}
		if ev, err := schemas.Decode(msg.Data()); err == nil {
			each(ev)
		} else {
			undecodable++
		}
		md, err := msg.Metadata()
		if err != nil {
			return undecodable, fmt.Errorf("read %s: %w", stream, err)
		}
		if md.NumPending == 0 {
			return undecodable, nil
		}
	}
}

// dialCheck connects as check-cli.
func dialCheck(cfg app.Config) (*nats.Conn, jetstream.JetStream, error) {
	return dialJetStream(cfg, userCheckCLI)
}
