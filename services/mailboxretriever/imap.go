package mailboxretriever

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/worker"
	"github.com/mailmon/mailmon/services/mailboxretriever/mailhdr"
)

// fetchChunk bounds the messages one FETCH asks for.
const fetchChunk = 100

// folderSpec is a folder to watch and what finding a probe there means.
type folderSpec struct {
	name      string
	placement string
}

// folderMemory is what a folder watcher remembers across reconnects while
// the folder's UIDVALIDITY stays the same.
type folderMemory struct {
	uidValidity uint32
	lastUID     imap.UID
	// unresolved holds probes waiting for their probe.sent (orphans) or
	// for a retry after a transient failure, by UID.
	unresolved map[imap.UID]*pendingMsg
	// undeleted are reported probes whose deletion failed.
	undeleted map[imap.UID]bool
}

type pendingMsg struct {
	f       *found
	probeID string
	orphan  bool
}

func (m *folderMemory) reset(validity uint32) {
	*m = folderMemory{uidValidity: validity, unresolved: map[imap.UID]*pendingMsg{}, undeleted: map[imap.UID]bool{}}
}

func (a *account) runIMAP(ctx context.Context) {
	bo := backoff{min: a.r.cfg.ReconnectMin.Std(), max: a.r.cfg.ReconnectMax.Std()}
	var specs []folderSpec
	for ctx.Err() == nil {
		var err error
		specs, err = a.discover(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		a.failed("", err)
		a.r.log.Warn("seed account: list folders", "account", a.cfg.Name, "error", err)
		worker.Sleep(ctx, bo.next())
	}
	if ctx.Err() != nil {
		return
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	states := a.setFolders(names)
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Go(func() { a.watchFolder(ctx, s, states[s.name]) })
	}
	wg.Wait()
}

// dialIMAP connects, logs in and bounds the client's life by ctx.
func (a *account) dialIMAP(ctx context.Context, handler *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	timeout := a.r.cfg.Timeout.Std()
	opts := &imapclient.Options{
		TLSConfig:             a.tls,
		UnilateralDataHandler: handler,
		Dialer:                &net.Dialer{Timeout: timeout},
	}
	var c *imapclient.Client
	var err error
	switch a.cfg.TLS {
	case TLSImplicit:
		c, err = imapclient.DialTLS(a.cfg.Addr, opts)
	case TLSStartTLS:
		c, err = imapclient.DialStartTLS(a.cfg.Addr, opts)
	default:
		c, err = imapclient.DialInsecure(a.cfg.Addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", a.cfg.Addr, err)
	}
	err = bounded(ctx, c, timeout, func() error {
		if err := c.WaitGreeting(); err != nil {
			return err
		}
		switch a.cfg.Auth {
		case AuthLogin:
			return c.Login(a.cfg.Username, a.cfg.Password.Reveal()).Wait()
		default:
			sc, err := saslFor(ctx, a.cfg)
			if err != nil {
				return err
			}
			return c.Authenticate(sc)
		}
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("login as %s: %w", a.cfg.Username, err)
	}
	return c, nil
}

// bounded runs f, closing the client if it takes longer than timeout or
// ctx ends (imapclient commands take no context).
func bounded(ctx context.Context, c *imapclient.Client, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := f()
	if !stop() && err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s: %w", timeout, err)
		}
	}
	return err
}

// discover lists the folders and picks INBOX, the spam folder (SPECIAL-USE
// \Junk, else the first configured name that exists) and the configured
// other folders that exist.
func (a *account) discover(ctx context.Context) ([]folderSpec, error) {
	c, err := a.dialIMAP(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	opts := &imap.ListOptions{}
	if caps := c.Caps(); caps.Has(imap.CapSpecialUse) || caps.Has(imap.CapListExtended) {
		opts.ReturnSpecialUse = true
	}
	var list []*imap.ListData
	err = bounded(ctx, c, a.r.cfg.Timeout.Std(), func() error {
		var err error
		list, err = c.List("", "*", opts).Collect()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list folders: %w", err)
	}
	_ = c.Logout().Wait()
	exists := map[string]string{} // lower-case name -> name
	junk := ""
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		exists[strings.ToLower(l.Mailbox)] = l.Mailbox
		if junk == "" && slices.Contains(l.Attrs, imap.MailboxAttrJunk) {
			junk = l.Mailbox
		}
	}
	specs := []folderSpec{{name: "INBOX", placement: schemas.PlacementInbox}}
	if junk == "" {
		for _, n := range a.cfg.SpamFolders {
			if real, ok := exists[strings.ToLower(n)]; ok {
				junk = real
				break
			}
		}
	}
	if junk != "" && !strings.EqualFold(junk, "INBOX") {
		specs = append(specs, folderSpec{name: junk, placement: schemas.PlacementSpam})
	} else {
		a.r.log.Warn("seed account has no spam folder; only the inbox and other folders are watched", "account", a.cfg.Name)
	}
	for _, n := range a.cfg.OtherFolders {
		real, ok := exists[strings.ToLower(n)]
		if !ok {
			a.r.log.Warn("configured folder does not exist", "account", a.cfg.Name, "folder", n)
			continue
		}
		if !slices.ContainsFunc(specs, func(s folderSpec) bool { return s.name == real }) {
			specs = append(specs, folderSpec{name: real, placement: schemas.PlacementOther})
		}
	}
	return specs, nil
}

// watchFolder keeps one folder read: a session per connection, reconnecting
// with backoff after errors.
func (a *account) watchFolder(ctx context.Context, spec folderSpec, st *folderState) {
	bo := backoff{min: a.r.cfg.ReconnectMin.Std(), max: a.r.cfg.ReconnectMax.Std()}
	var mem folderMemory
	mem.reset(0)
	for ctx.Err() == nil {
		synced, err := a.folderSession(ctx, spec, st, &mem)
		if ctx.Err() != nil {
			return
		}
		if synced {
			bo.reset()
		}
		if err != nil {
			a.failed(spec.name, err)
			a.r.log.Warn("seed folder", "account", a.cfg.Name, "folder", spec.name, "error", err)
		}
		worker.Sleep(ctx, bo.next())
	}
}

// folderSession reads one folder over one connection until an error: a
// full search at start, then new mail on IDLE's EXISTS (or every
// poll_interval), and whenever the deadline check asks.
func (a *account) folderSession(ctx context.Context, spec folderSpec, st *folderState, mem *folderMemory) (synced bool, err error) {
	exists := make(chan struct{}, 1)
	handler := &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case exists <- struct{}{}:
				default:
				}
			}
		},
	}
	c, err := a.dialIMAP(ctx, handler)
	if err != nil {
		return false, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	timeout := a.r.cfg.Timeout.Std()
	var sel *imap.SelectData
	if err := bounded(ctx, c, timeout, func() error {
		var err error
		sel, err = c.Select(spec.name, nil).Wait()
		return err
	}); err != nil {
		return false, fmt.Errorf("select %s: %w", spec.name, err)
	}
	if sel.UIDValidity != mem.uidValidity {
		mem.reset(sel.UIDValidity)
	}
	caps := c.Caps()
	useIdle := !a.cfg.PollOnly && (caps.Has(imap.CapIdle) || caps.Has(imap.CapIMAP4rev2))
	uidplus := caps.Has(imap.CapUIDPlus) || caps.Has(imap.CapIMAP4rev2)
	initial := mem.lastUID == 0
	for {
		start := a.r.now()
		if err := a.scan(ctx, c, spec, st, mem, initial, uidplus); err != nil {
			return synced, err
		}
		initial = false
		synced = true
		a.synced(spec.name, start)
		if !useIdle {
			timer := time.NewTimer(a.r.cfg.PollInterval.Std())
			select {
			case <-ctx.Done():
				timer.Stop()
				return synced, nil
			case <-c.Closed():
				timer.Stop()
				return synced, errors.New("connection closed")
			case <-st.kick:
			case <-exists:
			case <-timer.C:
			}
			timer.Stop()
			continue
		}
		idle, err := c.Idle()
		if err != nil {
			return synced, fmt.Errorf("idle: %w", err)
		}
		timer := time.NewTimer(a.r.cfg.IdleRefresh.Std())
		select {
		case <-ctx.Done():
		case <-c.Closed():
		case <-st.kick:
		case <-exists:
		case <-timer.C: // re-issue IDLE before the server drops us
		}
		timer.Stop()
		if ctx.Err() != nil {
			return synced, nil
		}
		err = bounded(ctx, c, timeout, func() error {
			if err := idle.Close(); err != nil {
				return err
			}
			return idle.Wait()
		})
		if err != nil {
			return synced, fmt.Errorf("idle: %w", err)
		}
	}
}

var headerSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}

// scan reads the messages that arrived since the last scan (on the first,
// those of the last lookback), retries unresolved ones, and deletes the
// reported probes.
func (a *account) scan(ctx context.Context, c *imapclient.Client, spec folderSpec, st *folderState, mem *folderMemory, initial, uidplus bool) error {
	timeout := a.r.cfg.Timeout.Std()
	crit := &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: mem.lastUID + 1, Stop: 0}}}}
	if initial {
		crit.Since = a.r.now().Add(-a.r.cfg.Lookback.Std())
	}
	var uids []imap.UID
	if err := bounded(ctx, c, timeout, func() error {
		data, err := c.UIDSearch(crit, nil).Wait()
		if err != nil {
			return err
		}
		for _, u := range data.AllUIDs() {
			// "n:*" always matches the last message, even below n.
			if u > mem.lastUID {
				uids = append(uids, u)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	slices.Sort(uids)
	var toDelete []imap.UID
	for u := range mem.undeleted {
		toDelete = append(toDelete, u)
	}
	kick := func() {
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
	for u, p := range mem.unresolved {
		if a.resolve(ctx, u, p.f, mem, &toDelete, kick) {
			delete(mem.unresolved, u)
		}
	}
	for i := 0; i < len(uids); i += fetchChunk {
		chunk := uids[i:min(i+fetchChunk, len(uids))]
		var msgs []*imapclient.FetchMessageBuffer
		if err := bounded(ctx, c, timeout, func() error {
			var err error
			msgs, err = c.Fetch(imap.UIDSetNum(chunk...), &imap.FetchOptions{
				UID: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{headerSection},
			}).Collect()
			return err
		}); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		seenAt := a.r.now()
		for _, m := range msgs {
			f := &found{
				account: a, protocol: schemas.ProtocolIMAP, folder: spec.name, placement: spec.placement,
				header: mailhdr.Parse(m.FindBodySection(headerSection)), internalDate: m.InternalDate, seenAt: seenAt,
			}
			if !a.resolve(ctx, m.UID, f, mem, &toDelete, kick) {
				mem.unresolved[m.UID] = &pendingMsg{f: f}
			}
		}
		mem.lastUID = max(mem.lastUID, chunk[len(chunk)-1])
	}
	if len(toDelete) == 0 || !a.r.cfg.Delete {
		return nil
	}
	if err := bounded(ctx, c, timeout, func() error { return deleteUIDs(c, toDelete, uidplus) }); err != nil {
		a.r.metrics.deleteErrs.Inc()
		for _, u := range toDelete {
			mem.undeleted[u] = true
		}
		return fmt.Errorf("delete: %w", err)
	}
	for _, u := range toDelete {
		delete(mem.undeleted, u)
	}
	return nil
}

// resolve processes one message and reports whether it is settled (true)
// or must be looked at again (orphan, transient failure).
func (a *account) resolve(ctx context.Context, uid imap.UID, f *found, mem *folderMemory, toDelete *[]imap.UID, kick func()) bool {
	v, detail := a.r.process(ctx, f)
	switch v {
	case verdictIgnored:
		a.r.metrics.ignored.WithLabelValues(detail).Inc()
		return true
	case verdictDone:
		a.r.dropOrphan(detail)
		if a.r.cfg.Delete {
			*toDelete = append(*toDelete, uid)
		}
		return true
	case verdictOrphan:
		if a.r.now().Sub(f.seenAt) > a.r.cfg.OrphanGrace.Std() {
			// Ours (the signature verifies) but never announced, or
			// announced so long ago that the expectation expired.
			a.r.dropOrphan(detail)
			a.r.metrics.ignored.WithLabelValues("unexpected").Inc()
			if a.r.cfg.Delete {
				*toDelete = append(*toDelete, uid)
			}
			return true
		}
		a.r.registerOrphan(detail, kick)
		return false
	default:
		return false
	}
}

func deleteUIDs(c *imapclient.Client, uids []imap.UID, uidplus bool) error {
	set := imap.UIDSetNum(uids...)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return err
	}
	if uidplus {
		return c.UIDExpunge(set).Close()
	}
	return c.Expunge().Close()
}
