package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of leases, declared in pipelines/topology.yaml
// with per-key TTLs (limit_marker_ttl).
const Bucket = "leases"

// DefaultTTL is how long a lease outlives its holder's last renewal.
const DefaultTTL = 15 * time.Second

// MinTTL is the shortest TTL: the server keeps TTLs in whole seconds.
const MinTTL = time.Second

// Options configures a Lease.
type Options struct {
	// TTL is how long the key outlives the last renewal; default
	// DefaultTTL. It is rounded up to whole seconds.
	TTL time.Duration
	// Holder names this copy in the key's value; default host-pid-random.
	Holder string
	// Logger receives acquisitions, losses and errors; default none.
	Logger *slog.Logger
	// Defer, when set and true, makes this copy let others go first: it
	// does not try to acquire the moment the key is freed, only on its
	// retry timer (every TTL/3), so a copy that does not defer wins a
	// freed lease. Copies that share work use it to balance it.
	Defer func() bool
}

// Lease is one named lease as seen by one copy. Build it with New; Run
// campaigns for it. A Lease is used by one Run at a time.
type Lease struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	key    string
	holder string
	ttl    time.Duration
	log    *slog.Logger
	defer_ func() bool

	mu   sync.Mutex
	term Term
	held bool
}

// Term is one period during which a copy held the lease: the revision its
// Create wrote and the last revision it renewed to.
type Term struct {
	Holder   string
	Acquired uint64
	Last     uint64
	Since    time.Time
}

// New opens the leases bucket and returns the lease named key for this
// copy. Keys follow the KV rules (letters, digits, '-', '_', '/', '=',
// and '.' between tokens).
func New(ctx context.Context, js jetstream.JetStream, key string, o Options) (*Lease, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("lease: KV bucket %s (apply the pipelines first): %w", Bucket, err)
	}
	if !ValidKey(key) {
		return nil, fmt.Errorf("lease: %q is not a valid key", key)
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < MinTTL {
		return nil, fmt.Errorf("lease: TTL %s is shorter than %s", ttl, MinTTL)
	}
	ttl = (ttl + time.Second - 1) / time.Second * time.Second
	holder := o.Holder
	if holder == "" {
		holder = DefaultHolder()
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lease{js: js, kv: kv, key: key, holder: holder, ttl: ttl, log: log.With("lease", key), defer_: o.Defer}, nil
}

// DefaultHolder names this process: host name, pid and a random suffix
// (two copies in one process, as tests run them, still differ).
func DefaultHolder() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64()%1e6, 10)
}

// ValidKey reports whether key can name a lease.
func ValidKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' {
		return false
	}
	prevDot := false
	for _, c := range key {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/' || c == '=' || c == '.'
		if !ok || c == '.' && prevDot {
			return false
		}
		prevDot = c == '.'
	}
	return true
}

// Key is the lease's key; TTL its time to live; Holder this copy's id.
func (l *Lease) Key() string             { return l.key }
func (l *Lease) TTL() time.Duration      { return l.ttl }
func (l *Lease) Holder() string          { return l.holder }
func (l *Lease) interval() time.Duration { return l.ttl / 3 }

// Held reports whether this copy holds the lease now, and its term.
func (l *Lease) Held() (Term, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term, l.held
}

// Run campaigns for the lease until ctx ends. Each time it acquires the
// lease it calls lead with a context that is cancelled the moment the
// lease is lost (or ctx ends), and waits for lead to return before
// campaigning again, so lead must return promptly once its context ends.
// When ctx ends Run releases a lease it holds. If lead returns an error
// while the lease is still held, Run releases it and returns the error;
// if lead returns nil, Run releases the lease and campaigns again after
// one retry interval.
func (l *Lease) Run(ctx context.Context, lead func(context.Context) error) error {
	for {
		rev, err := l.campaign(ctx)
		if err != nil {
			return nil // ctx ended while standing by
		}
		if err := l.hold(ctx, rev, lead); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// campaign returns the revision of this copy's Create once it succeeds,
// or ctx's error.
func (l *Lease) campaign(ctx context.Context) (uint64, error) {
	var w jetstream.KeyWatcher
	defer func() {
		if w != nil {
			_ = w.Stop()
		}
	}()
	warned := false
	onTimer := false
	for {
		if !onTimer && l.defer_ != nil && l.defer_() {
			// Let a copy that does not defer take it first.
			if !sleep(ctx, l.interval()) {
				return 0, ctx.Err()
			}
		}
		onTimer = false
		rev, err := l.kv.Create(ctx, l.key, []byte(l.holder), jetstream.KeyTTL(l.ttl))
		if err == nil {
			return rev, nil
		}
		if ctx.Err() != nil {
			// Stopped while the Create was in flight: it may have been
			// stored without this copy hearing of it.
			l.abandon()
			return 0, ctx.Err()
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !warned {
			l.log.Warn("lease: cannot try to acquire; retrying", "error", err)
			warned = true
		}
		if w == nil {
			// A watch tells a standby the moment the key is deleted or
			// expires; the timer below covers a watch that fails.
			w, _ = l.kv.Watch(ctx, l.key, jetstream.UpdatesOnly())
		}
		var updates <-chan jetstream.KeyValueEntry
		if w != nil {
			updates = w.Updates()
		}
		timer := time.NewTimer(l.interval())
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return 0, ctx.Err()
			case <-timer.C:
				onTimer = true
				break wait
			case e, ok := <-updates:
				if !ok {
					w, updates = nil, nil
					continue
				}
				if e != nil && e.Operation() != jetstream.KeyValuePut {
					timer.Stop()
					break wait
				}
			}
		}
	}
}

// hold runs lead while renewing the lease, and returns once lead has
// returned and the lease is released or lost.
func (l *Lease) hold(ctx context.Context, rev uint64, lead func(context.Context) error) error {
	l.mu.Lock()
	l.term = Term{Holder: l.holder, Acquired: rev, Last: rev, Since: time.Now()}
	l.held = true
	l.mu.Unlock()
	l.log.Info("lease acquired", "holder", l.holder, "revision", rev, "ttl", l.ttl)

	leadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- lead(leadCtx) }()
	// lastOK is when the last write that the server stored was sent: the
	// key lives at least TTL from then, and this copy stops leading
	// 2·TTL/3 from then unless a renewal succeeds.
	lastOK := time.Now()
	timer := time.NewTimer(l.interval())
	defer timer.Stop()
	for {
		select {
		case err := <-done:
			l.release(rev)
			if err != nil && ctx.Err() == nil {
				return err
			}
			if ctx.Err() == nil {
				// Give the other copies a chance before campaigning again.
				sleep(ctx, l.interval())
			}
			return nil
		case <-ctx.Done():
			cancel()
			<-done
			l.release(rev)
			return nil
		case <-timer.C:
			sent, next, err := l.renew(ctx, rev, lastOK.Add(2*l.ttl/3))
			if err != nil {
				// Stop leading first, then say so.
				cancel()
				<-done
				l.setLost()
				if ctx.Err() != nil {
					// Stopped during the renewal, which may have been
					// stored: release what this copy may still hold.
					l.abandon()
					return nil
				}
				l.log.Warn("lease lost; stopped leading", "holder", l.holder, "revision", rev, "error", err)
				return nil
			}
			rev, lastOK = next, sent
			l.mu.Lock()
			l.term.Last = rev
			l.mu.Unlock()
			timer.Reset(time.Until(lastOK.Add(l.interval())))
		}
	}
}

// renew writes the key again if rev is still its last revision, with the
// TTL again, retrying a failed write until deadline. It returns when the
// stored write was sent and its revision.
func (l *Lease) renew(ctx context.Context, rev uint64, deadline time.Time) (time.Time, uint64, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// kv.Update cannot set a TTL (the key would then never expire), so
	// this is the publish Update makes, with the TTL header added.
	for {
		sent := time.Now()
		msg := &nats.Msg{Subject: "$KV." + Bucket + "." + l.key, Data: []byte(l.holder)}
		ack, err := l.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(l.ttl))
		if err == nil {
			return sent, ack.Sequence, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) || ctx.Err() != nil {
			// The server refused (another revision is last: the key
			// expired or someone else holds it), or time is up.
			return time.Time{}, 0, err
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// release deletes the key if it still holds rev, so a standby takes over
// at once. A failure is harmless: the key expires within one TTL.
func (l *Lease) release(rev uint64) {
	l.mu.Lock()
	if !l.held {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.setLost()
	ctx, cancel := context.WithTimeout(context.Background(), l.interval())
	defer cancel()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
		l.log.Warn("lease not released; it expires within its TTL", "error", err)
		return
	}
	l.log.Info("lease released", "holder", l.holder)
}

// abandon deletes the key if its last value is this copy's id: a write
// whose answer never came (the copy stopped meanwhile) may have been
// stored, and would otherwise keep the standbys out for a whole TTL.
func (l *Lease) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), l.interval())
	defer cancel()
	e, err := l.kv.Get(ctx, l.key)
	if err != nil || string(e.Value()) != l.holder {
		return
	}
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(e.Revision())); err == nil {
		l.log.Info("lease released", "holder", l.holder)
	}
}

func (l *Lease) setLost() {
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Claim creates key in the leases bucket, expiring after ttl, unless it
// exists, and reports whether this call created it: of the copies that
// claim the same one-off piece of work (one schedule slot's round), the
// first does it and the others skip it.
func Claim(ctx context.Context, js jetstream.JetStream, key, holder string, ttl time.Duration) (bool, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return false, fmt.Errorf("lease: KV bucket %s (apply the pipelines first): %w", Bucket, err)
	}
	ttl = max((ttl+time.Second-1)/time.Second*time.Second, MinTTL)
	_, err = kv.Create(ctx, key, []byte(holder), jetstream.KeyTTL(ttl))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	default:
		return false, fmt.Errorf("lease: claim %s: %w", key, err)
	}
}
