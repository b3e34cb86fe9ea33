package fblingester

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// maxPerPull bounds how many messages one pull of a folder handles, so a
// flooded mailbox is worked through over several pulls without holding one
// session open for hours.
const maxPerPull = 500

// runIMAP pulls one account every interval until ctx ends.
func (in *Ingester) runIMAP(ctx context.Context, a IMAPAccount) {
	name := "imap:" + a.Name
	for {
		n, err := in.pullIMAP(ctx, a)
		in.setFailing(name, err)
		if err != nil {
			in.m.pullErrors.WithLabelValues("imap", a.Name).Inc()
			in.log.Warn("imap pull failed; messages left in the mailbox are read again at the next pull", "account", a.Name, "error", err)
		} else if n > 0 {
			in.log.Info("imap pull", "account", a.Name, "messages", n)
		}
		if !worker.Sleep(ctx, in.cfg.IMAP.Interval.Std()) {
			return
		}
	}
}

// pullIMAP reads every message of the account's folders and removes (or
// moves) each one only after its events are stored, or, for one whose
// events can never be stored, after its dead letter is. A message whose
// handling fails stays where it is and ends the pull: the bus is likely
// away, and the next pull starts over with it.
func (in *Ingester) pullIMAP(ctx context.Context, a IMAPAccount) (int, error) {
	timeout := in.cfg.IMAP.Timeout.Std()
	c, err := dialIMAP(ctx, a, timeout)
	if err != nil {
		return 0, err
	}
	defer func() {
		_ = bounded(ctx, c, timeout, func() error { return c.Logout().Wait() })
		c.Close()
	}()
	folders := a.Folders
	if len(folders) == 0 {
		folders = []string{"INBOX"}
	}
	total := 0
	for _, folder := range folders {
		n, err := in.pullFolder(ctx, c, a, folder, timeout)
		total += n
		if err != nil {
			return total, fmt.Errorf("folder %s: %w", folder, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return total, nil
}

func (in *Ingester) pullFolder(ctx context.Context, c *imapclient.Client, a IMAPAccount, folder string, timeout time.Duration) (int, error) {
	var uids []imap.UID
	err := bounded(ctx, c, timeout, func() error {
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			return fmt.Errorf("select: %w", err)
		}
		data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		uids = data.AllUIDs()
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(uids) > maxPerPull {
		uids = uids[:maxPerPull]
	}
	section := &imap.FetchItemBodySection{Peek: true}
	done := 0
	for _, uid := range uids {
		if ctx.Err() != nil {
			break
		}
		var raw []byte
		var size int64
		err := bounded(ctx, c, timeout, func() error {
			msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
			if err != nil {
				return err
			}
			if len(msgs) == 0 {
				return nil // expunged meanwhile
			}
			raw, size = msgs[0].FindBodySection(section), msgs[0].RFC822Size
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("fetch uid %d: %w", uid, err)
		}
		if raw == nil {
			continue
		}
		if size > in.cfg.MaxMessageBytes.Int64() || int64(len(raw)) > in.cfg.MaxMessageBytes.Int64() {
			// Stored as a dead letter (cut) so an operator sees it, then
			// removed: reading it again would never succeed.
			if err := in.deadLetter(context.WithoutCancel(ctx), raw, schemas.ReceivedViaIMAP, fmt.Sprintf("message of %d bytes is over max_message_bytes", max(size, int64(len(raw))))); err != nil {
				return done, err
			}
			in.m.deadLettered.WithLabelValues(schemas.ReceivedViaIMAP).Inc()
		} else if _, err := in.handle(context.WithoutCancel(ctx), raw, imapOrigin(a)); err != nil {
			return done, fmt.Errorf("uid %d not stored, left in the mailbox: %w", uid, err)
		}
		// Only now, with its events stored, does the message leave the
		// mailbox. A crash between the two reads it again next time; its
		// events have the same ids and are dropped as duplicates.
		if err := bounded(ctx, c, timeout, func() error { return remove(c, uid, a.MoveTo) }); err != nil {
			return done, fmt.Errorf("remove uid %d: %w", uid, err)
		}
		done++
	}
	return done, nil
}

// imapOrigin is the origin of a message read from an account: trusted
// only when the account is marked so.
func imapOrigin(a IMAPAccount) origin {
	o := origin{via: schemas.ReceivedViaIMAP}
	if a.Trusted {
		o.trust = schemas.TrustTrustedInput
	}
	return o
}

// remove moves a message to moveTo, or deletes it when moveTo is empty.
func remove(c *imapclient.Client, uid imap.UID, moveTo string) error {
	set := imap.UIDSetNum(uid)
	if moveTo != "" {
		_, err := c.Move(set, moveTo).Wait()
		return err
	}
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return err
	}
	if c.Caps().Has(imap.CapUIDPlus) {
		return c.UIDExpunge(set).Close()
	}
	return c.Expunge().Close()
}

// dialIMAP connects and logs in. Errors name the user, never the password.
func dialIMAP(ctx context.Context, a IMAPAccount, timeout time.Duration) (*imapclient.Client, error) {
	host, _, _ := net.SplitHostPort(a.Addr)
	opts := &imapclient.Options{
		TLSConfig: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12},
		Dialer:    &net.Dialer{Timeout: timeout},
	}
	var c *imapclient.Client
	var err error
	switch a.TLS {
	case tlsNone:
		c, err = imapclient.DialInsecure(a.Addr, opts)
	case tlsStartTLS:
		c, err = imapclient.DialStartTLS(a.Addr, opts)
	default:
		c, err = imapclient.DialTLS(a.Addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", a.Addr, err)
	}
	err = bounded(ctx, c, timeout, func() error {
		if err := c.WaitGreeting(); err != nil {
			return err
		}
		return c.Login(a.Username, a.Password.Reveal()).Wait()
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("login as %s: %w", a.Username, err)
	}
	return c, nil
}

// bounded runs f, closing the client if it takes longer than timeout or
// ctx ends (imapclient commands take no context).
func bounded(ctx context.Context, c *imapclient.Client, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := f()
	if !stop() && err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s: %w", timeout, err)
	}
	return err
}
