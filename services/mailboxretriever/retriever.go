package mailboxretriever

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/lease"
	"github.com/mailmon/mailmon/services/internal/silence"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the subcommand, log name, dead-letter suffix and durable.
const WorkerName = "mailbox-retriever"

// Durable is the retriever's consumer of probe.sent on the PROBE stream.
const (
	Durable = "mailbox-retriever"
	Stream  = "PROBE"
)

// alertRule names the alert of an account that cannot be read.
const alertRule = "seed_account_unreadable"

// Retriever is the mailbox-retriever worker.
type Retriever struct {
	cfg     Config
	track   worker.Tracking
	js      jetstream.JetStream
	pub     *bus.Publisher
	log     *slog.Logger
	source  schemas.Source
	metrics *metrics
	set     worker.Settings

	accounts map[string]*account
	bySeed   map[string]*account
	order    []*account

	// now is the clock of deadlines and event times; tests replace it.
	now func() time.Time

	kv jetstream.KeyValue
	// silences marks the alerts raised during a silence; nil when they
	// cannot be read.
	silences *silence.Store

	mu    sync.Mutex
	index map[string]indexed
	// orphans maps the probe id of a verified probe whose probe.sent is not
	// known yet to the kick of the folder holding it.
	orphans map[string]func()
	ready   chan struct{} // closed when the index holds the bucket's contents

	// holder names this copy in the account leases.
	holder string
	// held counts the accounts this copy reads; members the copies
	// present (read at membersAt); yielded is when this copy last handed
	// an account over.
	held               atomic.Int32
	shareMu            sync.Mutex
	members            int
	membersAt, yielded time.Time
	// leaseKV is the leases bucket, which also remembers which accounts'
	// alerts are firing, for the next holder.
	leaseKV jetstream.KeyValue
}

// New checks the configuration and builds a retriever. s.Tracking
// verifies the tracking header; its keyring is required once there are
// accounts to read.
func New(cfg Config, s worker.Settings) (*Retriever, error) {
	var check config.Check
	check.Nest("mailbox_retriever", cfg.Validate())
	if len(cfg.Accounts) > 0 && s.Tracking.Keyring == nil {
		check.Addf("tracking.key", "required to verify probes")
	}
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	r := &Retriever{
		cfg: cfg, track: s.Tracking, js: s.JetStream, pub: s.Publisher, log: s.Logger,
		source: s.Source, metrics: m, set: s,
		accounts: map[string]*account{}, bySeed: map[string]*account{},
		now: s.Now, index: map[string]indexed{}, orphans: map[string]func(){}, ready: make(chan struct{}),
		holder: lease.DefaultHolder(),
	}
	for _, ac := range cfg.Accounts {
		ac = ac.withDefaults()
		a := &account{r: r, cfg: ac, deadline: cfg.Deadline.Std(), kick: make(chan struct{}, 1)}
		if ac.Deadline > 0 {
			a.deadline = ac.Deadline.Std()
		}
		if ac.TLS != TLSNone {
			if a.tls, err = ac.tlsConfig(); err != nil {
				return nil, fmt.Errorf("mailbox_retriever: account %s: %w", ac.Name, err)
			}
		}
		r.accounts[ac.Name] = a
		r.order = append(r.order, a)
		for _, addr := range ac.seedAddresses() {
			r.bySeed[addr] = a
		}
		m.accountUp.WithLabelValues(ac.Name).Set(0)
	}
	return r, nil
}

// Run reads the seed accounts and consumes probe.sent until ctx ends.
func (r *Retriever) Run(ctx context.Context) error {
	kv, err := r.js.KeyValue(ctx, Bucket)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("KV bucket %s (apply the pipelines first): %w", Bucket, err)
	}
	r.kv = kv
	leases := make(map[*account]*lease.Lease, len(r.order))
	for _, a := range r.order {
		opts := r.cfg.AccountLease.Options()
		opts.Logger, opts.Holder = r.log.With("account", a.cfg.Name), r.holder
		opts.Defer = r.deferAccounts
		l, err := lease.New(ctx, r.js, AccountLeaseKey(a.cfg.Name), opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		leases[a] = l
	}
	if len(r.order) > 0 {
		if r.leaseKV, err = r.js.KeyValue(ctx, lease.Bucket); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("KV bucket %s (apply the pipelines first): %w", lease.Bucket, err)
		}
	}
	// This copy's presence, which the others count to know their share.
	var member *lease.Lease
	if len(r.order) > 0 {
		opts := r.cfg.AccountLease.Options()
		opts.Holder = r.holder
		if member, err = lease.New(ctx, r.js, memberKey(r.holder), opts); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	r.silences = silence.OpenForStamping(ctx, r.js, r.log)
	if r.silences != nil {
		defer r.silences.Close()
	}
	r.set.Health.Register(WorkerName, func(context.Context) error {
		var down []string
		for _, a := range r.order {
			if a.isHeld() && !a.healthy() {
				down = append(down, a.cfg.Name)
			}
		}
		if len(down) > 0 {
			return fmt.Errorf("seed accounts not readable: %s", strings.Join(down, ", "))
		}
		return nil
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if member != nil {
		wg.Go(func() {
			_ = member.Run(ctx, func(ctx context.Context) error {
				<-ctx.Done()
				return nil
			})
		})
	}
	wg.Go(func() { r.watch(ctx) })
	// Deadlines are judged on the whole bucket: wait until the index holds it.
	select {
	case <-r.ready:
	case <-ctx.Done():
		wg.Wait()
		return nil
	}
	for _, a := range r.order {
		wg.Go(func() { r.serve(ctx, a, leases[a]) })
	}
	wg.Go(func() { r.deadlineLoop(ctx) })
	err = bus.Consume(ctx, r.js, bus.ConsumeOptions{
		Worker: WorkerName, Stream: Stream, Durable: Durable,
		Publisher: r.pub, Logger: r.log, Metrics: r.set.Metrics,
	}, r.handleSent)
	cancel()
	wg.Wait()
	return err
}

// handleSent turns an accepted probe.sent into an expectation. It acks only
// once the KV entry exists; a redelivery finds the key and changes nothing.
func (r *Retriever) handleSent(ctx context.Context, m *bus.Msg) error {
	raw, err := schemas.Decode(m.Data)
	if err != nil {
		return bus.Permanent(err)
	}
	ev, ok := raw.(*schemas.ProbeSent)
	if !ok {
		return bus.Permanent(fmt.Errorf("a %T on the probe.sent subject", raw))
	}
	if ev.Outcome != schemas.OutcomeAccepted {
		r.metrics.expectations.WithLabelValues("not_accepted").Inc()
		return nil
	}
	if !keyRE.MatchString(ev.ProbeID) {
		r.metrics.expectations.WithLabelValues("bad_probe_id").Inc()
		return bus.Permanent(fmt.Errorf("probe id %q cannot be a KV key", ev.ProbeID))
	}
	a := r.bySeed[strings.ToLower(ev.SeedAddress)]
	if a == nil {
		r.metrics.expectations.WithLabelValues("unknown_seed").Inc()
		return nil
	}
	e := entry{
		State:      statePending,
		Account:    a.cfg.Name,
		Deadline:   ev.Time.Add(a.deadline),
		DeadlineMs: a.deadline.Milliseconds(),
		Probe: probeInfo{
			ProbeRoute: ev.ProbeRoute, ProbeSeed: ev.ProbeSeed, MessageID: ev.MessageID,
			SentAt: ev.Time, DKIMDomain: ev.DKIMDomain,
		},
	}
	data, err := json.Marshal(e)
	if err != nil {
		return bus.Permanent(err)
	}
	if _, err := r.kv.Create(ctx, ev.ProbeID, data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			r.metrics.expectations.WithLabelValues("redelivered").Inc()
			return nil
		}
		return fmt.Errorf("store expectation %s: %w", ev.ProbeID, err)
	}
	r.metrics.expectations.WithLabelValues("created").Inc()
	return nil
}

// watch keeps the in-memory index of expectations in step with the bucket,
// so deadlines survive restarts and are shared by every copy of the worker.
func (r *Retriever) watch(ctx context.Context) {
	first := true
	for ctx.Err() == nil {
		w, err := r.kv.WatchAll(ctx)
		if err != nil {
			r.log.Warn("watch expectations", "error", err)
			worker.Sleep(ctx, time.Second)
			continue
		}
		fresh := map[string]indexed{}
		loaded := false
		for upd := range w.Updates() {
			if upd == nil {
				loaded = true
				r.mu.Lock()
				r.index = fresh
				r.mu.Unlock()
				if first {
					close(r.ready)
					first = false
				}
				r.updatePendingGauge()
				continue
			}
			key := upd.Key()
			if upd.Operation() != jetstream.KeyValuePut {
				if loaded {
					r.mu.Lock()
					delete(r.index, key)
					r.mu.Unlock()
				} else {
					delete(fresh, key)
				}
				continue
			}
			e, err := decodeEntry(upd)
			if err != nil {
				r.log.Warn("undecodable expectation", "key", key, "error", err)
				continue
			}
			ix := indexed{State: e.State, Account: e.Account, Deadline: e.Deadline, Published: e.Published, Updated: upd.Created()}
			if !loaded {
				fresh[key] = ix
				continue
			}
			r.mu.Lock()
			r.index[key] = ix
			kick := r.orphans[key]
			r.mu.Unlock()
			if kick != nil && e.State == statePending {
				kick()
			}
			r.updatePendingGauge()
		}
		_ = w.Stop()
		if ctx.Err() == nil {
			worker.Sleep(ctx, time.Second)
		}
	}
}

func (r *Retriever) updatePendingGauge() {
	r.mu.Lock()
	n := 0
	for _, ix := range r.index {
		if ix.State == statePending {
			n++
		}
	}
	r.mu.Unlock()
	r.metrics.pending.Set(float64(n))
}

func (r *Retriever) deadlineLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.CheckInterval.Std())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.checkDeadlines(ctx)
			r.checkAccounts(ctx)
		}
	}
}

// checkDeadlines declares missing every pending probe past its deadline
// whose account has been read completely since the deadline; for the
// others it asks the account for a fresh read. An account that cannot be
// read holds its probes pending: that is an account alert, not a missing
// probe. It also republishes stored events whose publish did not complete.
func (r *Retriever) checkDeadlines(ctx context.Context) {
	now := r.now()
	r.mu.Lock()
	var due, unpublished []string
	for key, ix := range r.index {
		switch {
		case ix.State == statePending && !now.Before(ix.Deadline):
			due = append(due, key)
		case ix.State != statePending && !ix.Published && time.Since(ix.Updated) > 2*time.Second:
			unpublished = append(unpublished, key)
		}
	}
	snapshot := make(map[string]indexed, len(due))
	for _, k := range due {
		snapshot[k] = r.index[k]
	}
	r.mu.Unlock()
	sort.Strings(due)
	for _, key := range due {
		ix := snapshot[key]
		a := r.accounts[ix.Account]
		if a == nil {
			continue // the account left the config; the entry expires with the bucket's TTL
		}
		if !a.isHeld() {
			continue // the copy reading the account judges its probes
		}
		if a.syncedAt().Before(ix.Deadline) {
			a.kickAll()
			continue
		}
		if err := r.declareMissing(ctx, key, a); err != nil && ctx.Err() == nil {
			r.log.Warn("declare missing", "probe_id", key, "error", err)
		}
	}
	for _, key := range unpublished {
		if err := r.republish(ctx, key); err != nil && ctx.Err() == nil {
			r.log.Warn("republish", "probe_id", key, "error", err)
		}
	}
}

func (r *Retriever) declareMissing(ctx context.Context, key string, a *account) error {
	kve, err := r.kv.Get(ctx, key)
	if err != nil {
		return err
	}
	e, err := decodeEntry(kve)
	if err != nil || e.State != statePending {
		return err
	}
	now := r.now()
	ev := &schemas.ProbeMissing{
		ProbeRoute:     e.Probe.ProbeRoute,
		ProbeSeed:      e.Probe.ProbeSeed,
		Account:        e.Account,
		MessageID:      e.Probe.MessageID,
		SentAt:         e.Probe.SentAt,
		DeadlineMs:     e.DeadlineMs,
		WaitedMs:       now.Sub(e.Probe.SentAt).Milliseconds(),
		FoldersChecked: a.folderNames(),
	}
	if err := schemas.Stamp(ev, r.source, now); err != nil {
		return err
	}
	e.State, e.MissingEventID = stateMissing, ev.ID
	if e.Event, err = json.Marshal(ev); err != nil {
		return err
	}
	rev, err := update(ctx, r.kv, key, e, kve.Revision())
	if errors.Is(err, errConflict) {
		return nil // found meanwhile; the finder reports it
	}
	if err != nil {
		return err
	}
	if err := r.publishStored(ctx, key, e, rev); err != nil {
		return err
	}
	r.metrics.probes.WithLabelValues(e.Account, stateMissing).Inc()
	return nil
}

// republish publishes the stored event of an entry whose publish did not
// complete (a crash or a NATS error between storing and publishing).
func (r *Retriever) republish(ctx context.Context, key string) error {
	kve, err := r.kv.Get(ctx, key)
	if err != nil {
		return err
	}
	e, err := decodeEntry(kve)
	if err != nil || e.Published || e.State == statePending {
		return err
	}
	return r.publishStored(ctx, key, e, kve.Revision())
}

// publishStored publishes e.Event and marks the entry published. The event
// keeps its id, so publishing it twice stores it once.
func (r *Retriever) publishStored(ctx context.Context, key string, e entry, rev uint64) error {
	ev, err := schemas.Decode(e.Event)
	if err != nil {
		return fmt.Errorf("stored event of %s: %w", key, err)
	}
	if err := r.pub.Publish(ctx, ev); err != nil {
		r.metrics.publishErrs.Inc()
		return err
	}
	e.Published = true
	if _, err := update(ctx, r.kv, key, e, rev); err != nil && !errors.Is(err, errConflict) {
		// Published but not marked: the next check publishes the same
		// event again, which the stream drops as a duplicate.
		return nil
	}
	return nil
}

// checkAccounts raises an alert for an account that has not been read for
// alert_after, and resolves it once the account reads again.
func (r *Retriever) checkAccounts(ctx context.Context) {
	now := r.now()
	for _, a := range r.order {
		if !a.isHeld() {
			continue
		}
		since, lastErr, alerted := a.failure()
		switch {
		case !since.IsZero() && !alerted && now.Sub(since) >= r.cfg.AlertAfter.Std():
			if r.publishAlert(ctx, a, schemas.AlertFiring, fmt.Sprintf("seed account %s cannot be read since %s: %s", a.cfg.Name, since.UTC().Format(time.RFC3339), lastErr)) {
				a.setAlerted(true)
			}
		case since.IsZero() && alerted && !a.syncedAt().IsZero():
			// Every folder was read in this term.
			if r.publishAlert(ctx, a, schemas.AlertResolved, fmt.Sprintf("seed account %s is readable again", a.cfg.Name)) {
				a.setAlerted(false)
			}
		}
	}
}

func (r *Retriever) publishAlert(ctx context.Context, a *account, status, summary string) bool {
	ev := &schemas.AlertRaised{
		Rule: alertRule, Status: status, Severity: schemas.AlertWarning,
		Subject: "account:" + a.cfg.Name, Summary: summary,
		DedupeKey: WorkerName + ":account:" + a.cfg.Name,
	}
	r.silences.Stamp(ev, r.now())
	if err := schemas.Stamp(ev, r.source, r.now()); err != nil {
		return false
	}
	if err := r.pub.Publish(ctx, ev); err != nil {
		r.metrics.publishErrs.Inc()
		return false
	}
	if status == schemas.AlertFiring {
		r.log.Warn("seed account unreadable", "account", a.cfg.Name, "summary", summary)
	}
	r.noteAlert(ctx, a, status == schemas.AlertFiring)
	return true
}

// AccountLeaseKey is the lease of one seed account in the leases bucket:
// mailbox-retriever.<name>, with every byte of the name that a key cannot
// hold written as =XX (hex).
func AccountLeaseKey(name string) string { return WorkerName + "." + keyToken(name) }

// memberKey is the presence of one copy in the leases bucket: a lease
// only it takes, which expires within a TTL of its death.
func memberKey(holder string) string { return WorkerName + ".copy." + keyToken(holder) }

// keyToken writes s as one token of a KV key: letters, digits, '-' and '_'
// as they are, every other byte as =XX (hex).
func keyToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

// serve reads account a whenever this copy holds its lease, until ctx
// ends. While this copy reads more than its share of the accounts, it
// hands one over every TTL (see shouldYield).
func (r *Retriever) serve(ctx context.Context, a *account, l *lease.Lease) {
	_ = l.Run(ctx, func(ctx context.Context) error {
		a.begin(r.alertFiring(ctx, a))
		r.held.Add(1)
		defer func() {
			r.held.Add(-1)
			a.end()
		}()
		r.log.Info("reading seed account", "account", a.cfg.Name)
		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { a.run(runCtx) })
		defer func() {
			cancel()
			wg.Wait()
		}()
		tick := time.NewTicker(r.cfg.AccountLease.TTL.Std())
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				if r.shouldYield(ctx) {
					r.log.Info("handing the seed account over to a copy that reads fewer", "account", a.cfg.Name)
					return nil
				}
			}
		}
	})
}

// share is the number of accounts each live copy should read: the
// accounts divided by the copies present in the leases bucket, rounded
// up. The count is read at most once per retry interval.
func (r *Retriever) share(ctx context.Context) int {
	r.shareMu.Lock()
	defer r.shareMu.Unlock()
	if time.Since(r.membersAt) >= r.cfg.AccountLease.TTL.Std()/3 {
		r.membersAt = time.Now()
		n, err := r.countMembers(ctx)
		if err == nil {
			r.members = n
		} else if ctx.Err() == nil {
			r.log.Warn("count the copies present; the last count stands", "error", err)
		}
	}
	n := max(r.members, 1)
	return (len(r.order) + n - 1) / n
}

func (r *Retriever) countMembers(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	keys, err := r.leaseKV.ListKeysFiltered(ctx, WorkerName+".copy.*")
	if err != nil {
		return 0, err
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	_ = keys.Stop() // the lister is done once its channel closes
	return n, nil
}

// deferAccounts: this copy reads its share already, so it lets the others
// take a free account first (lease.Options.Defer).
func (r *Retriever) deferAccounts() bool {
	return int(r.held.Load()) >= r.share(context.Background())
}

// shouldYield: this copy reads more than its share and handed no account
// over within the last TTL (one at a time, so the others can take it).
func (r *Retriever) shouldYield(ctx context.Context) bool {
	if int(r.held.Load()) <= r.share(ctx) {
		return false
	}
	r.shareMu.Lock()
	defer r.shareMu.Unlock()
	if time.Since(r.yielded) < r.cfg.AccountLease.TTL.Std() {
		return false
	}
	r.yielded = time.Now()
	return true
}

// alertKey remembers, in the leases bucket, that an account's alert is
// firing, so that a copy taking the account over resolves it once the
// account reads again.
func alertKey(account string) string { return AccountLeaseKey(account) + ".alert" }

// alertFiring reports whether the last holder of a left its alert firing.
func (r *Retriever) alertFiring(ctx context.Context, a *account) bool {
	_, err := r.leaseKV.Get(ctx, alertKey(a.cfg.Name))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && ctx.Err() == nil {
		r.log.Warn("read the account's alert state; taken as not firing", "account", a.cfg.Name, "error", err)
	}
	return err == nil
}

// noteAlert records that a's alert is firing, or no longer is. A failure
// only costs the next holder its knowledge of the alert.
func (r *Retriever) noteAlert(ctx context.Context, a *account, firing bool) {
	var err error
	if firing {
		_, err = r.leaseKV.Put(ctx, alertKey(a.cfg.Name), []byte(r.holder))
	} else {
		err = r.leaseKV.Delete(ctx, alertKey(a.cfg.Name))
	}
	if err != nil && ctx.Err() == nil {
		r.log.Warn("store the account's alert state", "account", a.cfg.Name, "error", err)
	}
}
