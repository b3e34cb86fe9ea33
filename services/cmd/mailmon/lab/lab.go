package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/mtalogtailer"
	"github.com/mailmon/mailmon/services/peers"
)

// The lab's fixed world: sending IPs, domains, customers and providers.
// The worker config (deploy/config/mailmon.lab.yaml) names the same ones.
const (
	ipOut2 = "127.0.0.2" // the clean pool: shop and travel
	ipOut3 = "127.0.0.3" // the spammer's pool, listed and refused by outlook.lab
	ipNDR  = "127.0.0.4" // the low-reputation pool rerouted mail leaves from

	// dkimSelector is the selector of the sending domains' published keys
	// (dns_sweeper.audit.dkim_selectors).
	dkimSelector = "lab"
	// operatorDomain signs the feedback-loop reports
	// (fbl_ingester.trust.operators).
	operatorDomain   = "fbl.lab"
	operatorSelector = "fbl"
	operatorFrom     = "feedback@fbl.lab"
	// fblAddress is where the operator sends its reports.
	fblAddress = "fbl@mailmon.lab"
	// rblZone is the lab's blocklist, served by rbldnsd.
	rblZone = "rbl.mailmon.lab"
	// AbuseAddress is the abuse team's mailbox the notifier mails alerts to.
	AbuseAddress = "abuse@ops.lab"
	// selfTestListed is the zone's listed test entry: RFC 5782 would have
	// 127.0.0.2, the lab's clean sending IP (see the lab config).
	selfTestListed = "127.0.0.200"

	// DefaultSubmissionPort is where the lab's customers submit their mail
	// to our MTA.
	DefaultSubmissionPort = 2587

	// recipientsPerProvider is how many mailboxes of each provider the
	// customers send to (user1@ …).
	recipientsPerProvider = 5
)

type labProvider struct{ name, domain string }

// labProviders are the receiving providers; how each treats our IPs is in
// mxConfig.
var labProviders = []labProvider{{"gmail", "gmail.lab"}, {"yahoo", "yahoo.lab"}, {"outlook", "outlook.lab"}}

type labCustomer struct {
	name, domain string
	// ip and transport are the pool the MTA sends its mail from.
	ip, transport string
	// spammer: its recipients complain through the feedback loop.
	spammer bool
}

var labCustomers = []labCustomer{
	{name: "shop", domain: "shop.lab", ip: ipOut2, transport: "out2"},
	{name: "travel", domain: "travel.lab", ip: ipOut2, transport: "out2"},
	{name: "bulkdeals", domain: "bulkdeals.lab", ip: ipOut3, transport: "out3", spammer: true},
}

// SpammerCustomer is the customer whose complaint rate crosses the line.
const SpammerCustomer = "bulkdeals"

// sendingDomains are our domains: the probes' and the customers'.
func sendingDomains() []string {
	out := []string{"mailmon.lab"}
	for _, c := range labCustomers {
		out = append(out, c.domain)
	}
	return out
}

// Options are what a caller changes about the lab beyond the worker config.
type Options struct {
	// Logger receives the workers' log and the lab's own lines.
	Logger *slog.Logger
	// Status receives the summary every StatusInterval; nil prints none.
	Status         io.Writer
	StatusInterval time.Duration
	// SubmissionPort is where customers submit to our MTA; 0 is
	// DefaultSubmissionPort.
	SubmissionPort int
	// Traffic paces the customers and the feedback loop.
	Traffic TrafficOptions
	// Ready, when set, is called once every server and worker started.
	Ready func(*World)
}

// World is the running lab: its servers, each stopped by its own pid.
type World struct {
	Config app.Config
	// Dir is the lab's state directory (the config's data_dir, absolute).
	Dir      string
	Dovecot  *peers.Dovecot
	MX       *peers.Postfix
	MTA      *peers.Postfix
	dns      *peers.DNS
	rbl      *peers.Rbldnsd
	greylist *greylist
	// operatorKey signs the feedback loop's reports; its public half is
	// published by the lab DNS.
	operatorKey ed25519.PrivateKey
	submission  int
}

// Check reports why the lab cannot run on this machine, or nil.
func Check() error {
	return errors.Join(peers.CheckPostfix(), peers.CheckDovecot(), checkRbldnsd())
}

// Prepare completes a loaded lab config: data_dir becomes absolute, and
// the one log the tailer follows is the lab MTA's <data_dir>/mta/maillog,
// an absolute path the config file cannot hold while data_dir is relative
// to where the lab runs. It validates the result.
func Prepare(cfg *app.Config) error {
	if !cfg.Lab {
		return errors.New("the lab runs only a config that says lab: true (deploy/config/mailmon.lab.yaml)")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	cfg.DataDir = dir
	// The tailer follows the lab MTA's log, whatever the default says.
	cfg.MTALogTailer.Files = []mtalogtailer.FileConfig{{Path: filepath.Join(dir, "mta", "maillog"), Format: "postfix"}}
	return cfg.Validate()
}

// Run starts the lab's servers, then every worker with cfg, the traffic
// and the status summary, and blocks until ctx ends; then it stops
// everything, each server by its own pid. cfg must have passed Prepare.
func Run(ctx context.Context, cfg app.Config, opts Options) (err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	w, err := Start(ctx, cfg, opts.SubmissionPort, logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, w.Stop()) }()

	labCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ready := func(rt *app.Runtime) {
		wg.Go(func() {
			// Postfix asks the policy service about every recipient: the
			// traffic waits until it listens, or its first messages would
			// be deferred.
			if err := waitListening(labCtx, cfg.PolicyService.Listen); err != nil {
				return
			}
			logger.Info("lab: traffic starting", "customers", len(labCustomers), "submission", w.SubmissionAddr())
			runTraffic(labCtx, w, opts.Traffic, logger.With("lab", "traffic"))
		})
		if opts.Status != nil && opts.StatusInterval > 0 {
			wg.Go(func() { statusLoop(labCtx, cfg, w.Dir, opts.Status, opts.StatusInterval, logger) })
		}
		if opts.Ready != nil {
			opts.Ready(w)
		}
	}
	return app.Run(labCtx, cfg, logger, app.RunOptions{Workers: app.Workers(), ClickHouse: true, Ready: ready})
}

// Start brings up the servers of the lab world, without the workers: lab
// DNS, rbldnsd, the greylisting policy, Dovecot, the providers' MX and our
// MTA. On error whatever started is stopped.
func Start(ctx context.Context, cfg app.Config, submissionPort int, logger *slog.Logger) (_ *World, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if submissionPort == 0 {
		submissionPort = DefaultSubmissionPort
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	// Postfix's and Dovecot's unprivileged processes must reach the
	// servers' directories.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	w := &World{Config: cfg, Dir: dir, submission: submissionPort}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.Stop())
		}
	}()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	w.operatorKey = priv
	records, err := zoneData(pub)
	if err != nil {
		return nil, err
	}
	if w.dns, err = startDNS(cfg.DNSSweeper.Audit.Resolver, records); err != nil {
		return nil, err
	}
	logger.Info("lab: dns started", "addr", w.dns.Addr)
	if err := stopLeftover(filepath.Join(dir, "rbldnsd", "rbldnsd.pid"), "rbldnsd", logger); err != nil {
		return nil, err
	}
	if w.rbl, err = startRbldnsd(ctx, filepath.Join(dir, "rbldnsd"), cfg.DNSSweeper.Resolver); err != nil {
		return nil, err
	}
	logger.Info("lab: rbldnsd started", "zone", rblZone, "addr", cfg.DNSSweeper.Resolver, "pid", w.rbl.Pid())
	if w.greylist, err = startGreylist(); err != nil {
		return nil, err
	}
	seedPassword, imapPort, err := seedAccounts(cfg)
	if err != nil {
		return nil, err
	}
	w.Dovecot, err = peers.StartDovecot(ctx, peers.DovecotConfig{
		Dir: filepath.Join(dir, "dovecot"), Domain: "ops.lab", Users: []string{"abuse"},
		Addresses: mailboxes(), Password: seedPassword, IMAPPort: imapPort,
	})
	if err != nil {
		return nil, err
	}
	logger.Info("lab: dovecot started", "imap", w.Dovecot.IMAP, "lmtp", w.Dovecot.LMTP)
	mxPort, err := mxPort(cfg)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"mx", "mta"} {
		if err := stopLeftover(filepath.Join(dir, name, "spool", "pid", "master.pid"), "master", logger); err != nil {
			return nil, err
		}
	}
	if w.MX, err = peers.StartPostfix(ctx, mxConfig(filepath.Join(dir, "mx"), mxPort, w.Dovecot, w.greylist.addr())); err != nil {
		return nil, err
	}
	logger.Info("lab: providers' MX started", "addr", w.MX.Addr(), "domains", "gmail.lab yahoo.lab outlook.lab ops.lab")
	mtaCfg, err := mtaConfig(cfg, filepath.Join(dir, "mta"), submissionPort, mxPort)
	if err != nil {
		return nil, err
	}
	if w.MTA, err = peers.StartPostfix(ctx, mtaCfg); err != nil {
		return nil, err
	}
	logger.Info("lab: our MTA started", "submission", w.MTA.Addr(), "maillog", w.MTA.Maillog)
	return w, nil
}

// SubmissionAddr is where customers submit mail to our MTA.
func (w *World) SubmissionAddr() string { return "127.0.0.1:" + strconv.Itoa(w.submission) }

// Stop stops every server of the lab, each by its own pid, MTA first so no
// mail is left half-way to a stopped peer. The directories stay, so the
// next run resumes.
func (w *World) Stop() error {
	var errs []error
	if w.MTA != nil {
		errs = append(errs, w.MTA.Stop())
	}
	if w.MX != nil {
		errs = append(errs, w.MX.Stop())
	}
	if w.Dovecot != nil {
		errs = append(errs, w.Dovecot.Stop())
	}
	if w.greylist != nil {
		w.greylist.stop()
	}
	if w.rbl != nil {
		errs = append(errs, w.rbl.Stop())
	}
	if w.dns != nil {
		w.dns.Stop()
	}
	return errors.Join(errs...)
}

// mailboxes are the provider-side accounts: a seed per provider (what the
// mailbox-retriever reads) and the customers' recipients.
func mailboxes() []string {
	var out []string
	for _, p := range labProviders {
		out = append(out, "seed@"+p.domain)
		for i := 1; i <= recipientsPerProvider; i++ {
			out = append(out, fmt.Sprintf("user%d@%s", i, p.domain))
		}
	}
	return out
}

// seedAccounts checks the mailbox-retriever's accounts against the lab's
// one Dovecot: all on one loopback IMAP port, with one password.
func seedAccounts(cfg app.Config) (password string, port int, err error) {
	accounts := cfg.MailboxRetriever.Accounts
	if len(accounts) == 0 {
		return "", 0, errors.New("mailbox_retriever.accounts: the lab's seed mailboxes are missing")
	}
	for i, a := range accounts {
		p, err := loopbackPort(a.Addr)
		if err != nil {
			return "", 0, fmt.Errorf("mailbox_retriever.accounts[%d].addr: %w", i, err)
		}
		pw := a.Password.Reveal()
		if i == 0 {
			password, port = pw, p
		} else if p != port || pw != password {
			return "", 0, fmt.Errorf("mailbox_retriever.accounts[%d]: the lab's Dovecot has one IMAP port and one password for every seed", i)
		}
	}
	return password, port, nil
}

// mxPort is the providers' MX port: where the notifier's e-mail route
// relays (the lab config's smtp_addr).
func mxPort(cfg app.Config) (int, error) {
	for i, r := range cfg.Notifier.Routes {
		if r.Kind == "email" {
			p, err := loopbackPort(r.SMTPAddr)
			if err != nil {
				return 0, fmt.Errorf("notifier.routes[%d].smtp_addr: %w", i, err)
			}
			return p, nil
		}
	}
	return 0, errors.New("notifier.routes: the lab's e-mail route to " + AbuseAddress + " is missing (its smtp_addr is the providers' MX)")
}

// loopbackPort is the port of a 127.0.0.1:PORT address.
func loopbackPort(addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	if host != "127.0.0.1" {
		return 0, fmt.Errorf("%s: the lab runs on 127.0.0.1 only", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("%s: bad port", addr)
	}
	return p, nil
}

// waitListening polls until addr accepts a TCP connection or ctx ends.
func waitListening(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// joinLines writes lines with a final newline, for Postfix tables.
func joinLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// stopLeftover stops a server that a lab killed before it could stop its
// servers left running: Postfix daemonizes and rbldnsd drops root (which
// clears the signal a dying parent sends), so both outlive the lab. pidFile
// is in the lab's own directory, and the pid must still be comm, so
// nothing else is signalled; a new start would otherwise find its ports
// taken.
func stopLeftover(pidFile, comm string, logger *slog.Logger) error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return nil
	}
	if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(c)) != comm {
		return nil // gone, or the pid now belongs to something else
	}
	logger.Info("lab: stopping the "+comm+" an earlier lab left running", "pid_file", pidFile, "pid", pid)
	proc, err := os.FindProcess(pid)
	if err == nil {
		err = proc.Signal(syscall.SIGTERM)
	}
	if err != nil {
		return fmt.Errorf("stop the %s left running (pid %d): %w", comm, pid, err)
	}
	for deadline := time.Now().Add(peers.StopTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(st), ") Z ") {
			return nil
		}
	}
	return fmt.Errorf("the %s left running (pid %d) did not stop", comm, pid)
}
