package mailboxretriever

import (
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"time"
)

// account is one seed mailbox and the state of reading it.
type account struct {
	r        *Retriever
	cfg      Account
	tls      *tls.Config
	deadline time.Duration
	// kick asks a POP3 account for a read now.
	kick chan struct{}

	mu      sync.Mutex
	folders map[string]*folderState // nil until the folder list is known
	// failingSince is when reading started to fail; zero when healthy.
	failingSince time.Time
	lastErr      string
	alerted      bool
	// held: this copy holds the account's lease and reads it.
	held bool
}

// begin starts a term of holding the account: reading starts afresh; the
// account's alert is firing if the previous holder left it so.
func (a *account) begin(alerted bool) {
	a.mu.Lock()
	a.held, a.folders, a.failingSince, a.lastErr = true, nil, time.Time{}, ""
	a.alerted = alerted
	a.mu.Unlock()
	a.r.metrics.accountHeld.WithLabelValues(a.cfg.Name).Set(1)
}

// end ends the term: another copy reads the account now.
func (a *account) end() {
	a.mu.Lock()
	a.held, a.folders = false, nil
	a.mu.Unlock()
	a.r.metrics.accountHeld.WithLabelValues(a.cfg.Name).Set(0)
	a.r.metrics.accountUp.WithLabelValues(a.cfg.Name).Set(0)
}

func (a *account) isHeld() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held
}

// folderState is the progress of reading one folder (or the POP3 maildrop).
type folderState struct {
	// syncedAt is when the last complete read started: every message
	// stored before it has been seen.
	syncedAt time.Time
	ok       bool
	kick     chan struct{}
}

func (a *account) setFolders(names []string) map[string]*folderState {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.folders = map[string]*folderState{}
	for _, n := range names {
		a.folders[n] = &folderState{kick: make(chan struct{}, 1)}
	}
	return a.folders
}

// syncedAt is the oldest complete read over all folders.
func (a *account) syncedAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.folders) == 0 {
		return time.Time{}
	}
	var oldest time.Time
	first := true
	for _, f := range a.folders {
		if first || f.syncedAt.Before(oldest) {
			oldest, first = f.syncedAt, false
		}
	}
	return oldest
}

func (a *account) folderNames() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.folders))
	for n := range a.folders {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// kickAll asks every folder for a read now.
func (a *account) kickAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.folders {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// synced records a complete read of folder that started at start.
func (a *account) synced(folder string, start time.Time) {
	a.mu.Lock()
	if f := a.folders[folder]; f != nil {
		f.syncedAt, f.ok = start, true
	}
	healthy := true
	for _, f := range a.folders {
		healthy = healthy && f.ok
	}
	if healthy {
		a.failingSince, a.lastErr = time.Time{}, ""
	}
	a.mu.Unlock()
	if healthy {
		a.r.metrics.accountUp.WithLabelValues(a.cfg.Name).Set(1)
	}
}

// failed records a failed attempt on folder ("" for the account as a whole).
func (a *account) failed(folder string, err error) {
	a.mu.Lock()
	if f := a.folders[folder]; f != nil {
		f.ok = false
	}
	if a.failingSince.IsZero() {
		a.failingSince = a.r.now()
	}
	a.lastErr = err.Error()
	a.mu.Unlock()
	a.r.metrics.accountErrs.WithLabelValues(a.cfg.Name).Inc()
	a.r.metrics.accountUp.WithLabelValues(a.cfg.Name).Set(0)
}

func (a *account) healthy() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failingSince.IsZero() && a.folders != nil
}

func (a *account) failure() (time.Time, string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failingSince, a.lastErr, a.alerted
}

func (a *account) setAlerted(v bool) {
	a.mu.Lock()
	a.alerted = v
	a.mu.Unlock()
}

func (a *account) run(ctx context.Context) {
	if a.cfg.Protocol == ProtocolPOP3 {
		a.runPOP3(ctx)
		return
	}
	a.runIMAP(ctx)
}

// backoff is capped exponential backoff with jitter, so a server that is
// down is not hammered and several accounts do not retry in step.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

func tlsClient(conn net.Conn, cfg *tls.Config) *tls.Conn { return tls.Client(conn, cfg) }
