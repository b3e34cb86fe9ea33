package mailboxretriever

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/mailboxretriever/mailhdr"
	"github.com/mailmon/mailmon/services/mailboxretriever/pop3"
)

// pop3Folder is the name POP3 readings are filed under: POP3 has no
// folders, so placement is always "inbox".
const pop3Folder = "INBOX"

// pop3Memory is what a POP3 poller remembers between sessions, by UIDL.
type pop3Memory struct {
	settled    map[string]bool
	unresolved map[string]*found
}

// runPOP3 polls the maildrop every poll_interval, or at once when the
// deadline check asks, with backoff after failures.
func (a *account) runPOP3(ctx context.Context) {
	states := a.setFolders([]string{pop3Folder})
	st := states[pop3Folder]
	mem := &pop3Memory{settled: map[string]bool{}, unresolved: map[string]*found{}}
	bo := backoff{min: a.r.cfg.ReconnectMin.Std(), max: a.r.cfg.ReconnectMax.Std()}
	for ctx.Err() == nil {
		start := a.r.now()
		err := a.pollPOP3(ctx, st, mem)
		if ctx.Err() != nil {
			return
		}
		wait := a.r.cfg.PollInterval.Std()
		if err != nil {
			a.failed(pop3Folder, err)
			a.r.log.Warn("seed account", "account", a.cfg.Name, "error", err)
			wait = bo.next()
		} else {
			bo.reset()
			a.synced(pop3Folder, start)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-a.kick:
		case <-st.kick:
		}
		timer.Stop()
	}
}

func (a *account) dialPOP3(ctx context.Context) (*pop3.Client, error) {
	timeout := a.r.cfg.Timeout.Std()
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", a.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", a.cfg.Addr, err)
	}
	if a.cfg.TLS == TLSImplicit {
		tc := tlsClient(conn, a.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	c, err := pop3.NewClient(conn, timeout)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if a.cfg.TLS == TLSStartTLS {
		if err := c.StartTLS(a.tls); err != nil {
			c.Close()
			return nil, fmt.Errorf("stls: %w", err)
		}
	}
	switch a.cfg.Auth {
	case AuthUser:
		err = c.Login(a.cfg.Username, a.cfg.Password.Reveal())
	default:
		sc, serr := saslFor(ctx, a.cfg)
		if serr != nil {
			c.Close()
			return nil, serr
		}
		err = c.Auth(sc)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("login as %s: %w", a.cfg.Username, err)
	}
	return c, nil
}

// pollPOP3 runs one session: list, read the headers of new messages,
// report probes, mark them deleted, and QUIT (which commits the deletions;
// a broken session deletes nothing and the next one finds the probes
// again, already reported).
func (a *account) pollPOP3(ctx context.Context, st *folderState, mem *pop3Memory) error {
	c, err := a.dialPOP3(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	uids, err := c.UIDL()
	if err != nil {
		return fmt.Errorf("uidl: %w", err)
	}
	present := map[string]bool{}
	var deleted []string
	kick := func() {
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
	for _, u := range uids {
		present[u.UID] = true
		if mem.settled[u.UID] {
			continue
		}
		f := mem.unresolved[u.UID]
		if f == nil {
			top, err := c.Top(u.Num, 0)
			if err != nil {
				return fmt.Errorf("top: %w", err)
			}
			f = &found{account: a, protocol: schemas.ProtocolPOP3, folder: pop3Folder, placement: schemas.PlacementInbox,
				header: mailhdr.Parse(top), seenAt: a.r.now()}
		}
		v, detail := a.r.process(ctx, f)
		switch v {
		case verdictIgnored:
			a.r.metrics.ignored.WithLabelValues(detail).Inc()
			mem.settled[u.UID] = true
		case verdictDone:
			a.r.dropOrphan(detail)
			delete(mem.unresolved, u.UID)
			if a.r.cfg.Delete {
				if err := c.Dele(u.Num); err != nil {
					a.r.metrics.deleteErrs.Inc()
					return fmt.Errorf("dele: %w", err)
				}
				// Settled once QUIT commits the deletion; if it does not,
				// the next session finds the probe reported and deletes it.
				deleted = append(deleted, u.UID)
				continue
			}
			mem.settled[u.UID] = true
		case verdictOrphan:
			if a.r.now().Sub(f.seenAt) > a.r.cfg.OrphanGrace.Std() {
				a.r.dropOrphan(detail)
				a.r.metrics.ignored.WithLabelValues("unexpected").Inc()
				delete(mem.unresolved, u.UID)
				mem.settled[u.UID] = true
				continue
			}
			a.r.registerOrphan(detail, kick)
			mem.unresolved[u.UID] = f
		default:
			mem.unresolved[u.UID] = f
		}
	}
	for u := range mem.settled {
		if !present[u] {
			delete(mem.settled, u)
		}
	}
	for u := range mem.unresolved {
		if !present[u] {
			delete(mem.unresolved, u)
		}
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("quit: %w", err)
	}
	for _, u := range deleted {
		mem.settled[u] = true
	}
	return nil
}
