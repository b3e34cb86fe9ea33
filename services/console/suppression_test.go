package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/console/consoletest"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/suppression"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// seedSuppression is a console over consoletest's suppression events and
// bucket, hashing addresses under hashKey (empty: in clear).
func seedSuppression(t *testing.T, hashKey string) (http.Handler, consoletest.SuppressionTruth, *recorder) {
	t.Helper()
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	now := time.Now().UTC().Truncate(time.Second)
	_, _, js := natstest.Start(t)
	cfg := console.DefaultConfig()
	cfg.Suppression = suppression.DefaultConfig()
	cfg.Suppression.HashKey = config.Secret(hashKey)
	cfg.Suppression.DryRunCustomers = []string{consoletest.CleanCustomer}
	truth, err := consoletest.SeedSuppression(ctx, conn, js, cfg.Suppression.Hasher(), now)
	if err != nil {
		t.Fatal(err)
	}
	ch := chstore.DefaultConfig()
	ch.Addr, ch.Database = server.Addr(), database
	w, err := console.New(cfg, worker.Settings{JetStream: js, ClickHouse: ch, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	console.WrapConn(w, func(c driver.Conn) driver.Conn { rec.Conn = c; return rec })
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w.Handler(), truth, rec
}

func changeWho(cs []console.SuppressionChange) []string {
	var out []string
	for _, c := range cs {
		if c.Recipient != "" {
			out = append(out, c.Recipient)
		} else {
			out = append(out, c.RecipientHash)
		}
	}
	return out
}

func TestSuppressionPage(t *testing.T) {
	h, truth, rec := seedSuppression(t, "")

	page := getJSON[console.Suppression](t, h, "/suppression")
	var inForce []consoletest.SuppressionCount
	for _, c := range page.InForce {
		inForce = append(inForce, consoletest.SuppressionCount(c))
	}
	same(t, "in force", inForce, truth.InForce)
	same(t, "added", page.Added, truth.Added)
	same(t, "removed", page.Removed, truth.Removed)
	same(t, "latest added", changeWho(page.LatestAdded), truth.LatestAdded)
	same(t, "latest removed", changeWho(page.LatestRemoved), truth.LatestRemoved)
	if page.Lookup != nil || page.Hashed {
		t.Errorf("lookup %+v, hashed %v", page.Lookup, page.Hashed)
	}
	if a := page.LatestAdded[0]; a.Recipient != consoletest.GlobalAddress || a.Scope != schemas.SuppressGlobalRecipient || a.Customer != "" ||
		a.Reason != schemas.SuppressUnsubscribe || !a.Expires.IsZero() || a.RecipientDomain != "example.net" {
		t.Errorf("newest addition: %+v", a)
	}
	for _, a := range page.LatestAdded {
		if a.Recipient == consoletest.SuppressedAddress && a.Expires.Sub(a.Time) != 90*24*time.Hour {
			t.Errorf("bounce entry expires %v, 90 days after %v", a.Expires, a.Time)
		}
	}
	html := getHTML(t, h, "/suppression")
	contains(t, "suppression", html, "<title>mailmon · Suppression</title>", `href="/suppression?`, `aria-current="page">Suppression</a>`,
		"<td>acme</td><td>hard_bounce</td><td class=\"n\">2</td>", "<td>—</td><td>unsubscribe</td><td class=\"n\">1</td>",
		consoletest.SuppressedAddress, consoletest.GlobalAddress, "delivered", "released", `name="address"`)

	// A customer filter narrows every figure.
	beta := getJSON[console.Suppression](t, h, "/suppression?customer="+consoletest.CleanCustomer)
	if len(beta.InForce) != 1 || beta.InForce[0].Customer != consoletest.CleanCustomer || beta.InForce[0].Entries != 1 ||
		len(beta.LatestAdded) != 2 || beta.Removed[schemas.UnsuppressReleased] != 1 {
		t.Errorf("customer beta: %+v", beta)
	}

	// The lookup reads the bucket for the keys the policy service checks.
	l := getJSON[console.Suppression](t, h, "/suppression?customer=acme&address="+url.QueryEscape("gone@Example.ORG")).Lookup
	if l == nil || !l.Suppressed || l.Normalized != consoletest.SuppressedAddress || len(l.Keys) != 3 || l.DryRun {
		t.Fatalf("lookup %+v", l)
	}
	k := l.Keys[0]
	if k.Scope != schemas.SuppressCustomerRecipient || k.Key != truth.SuppressedKey || !k.Found || !k.Active || k.Reason != schemas.SuppressHardBounce ||
		k.BounceCategory != "user_unknown" || len(k.SourceEventIDs) != 1 || k.RemoveCommand != "mailmon suppression remove gone@example.org -customer acme" {
		t.Errorf("customer key %+v", k)
	}
	if l.Keys[1].Found || l.Keys[2].Found {
		t.Errorf("domain and global keys: %+v", l.Keys[1:])
	}
	html = getHTML(t, h, "/suppression?customer=acme&address=gone%40example.org")
	contains(t, "lookup", html, "<b class=\"bad\">suppressed</b>", truth.SuppressedKey, "in force", "not suppressed</td>",
		"mailmon suppression remove gone@example.org -customer acme")

	// Another customer: not suppressed (the global list does not hold it).
	l = getJSON[console.Suppression](t, h, "/suppression?customer=beta&address=gone%40example.org").Lookup
	if l.Suppressed || !l.DryRun || len(l.Keys) != 3 {
		t.Errorf("lookup for beta %+v", l)
	}
	contains(t, "lookup for beta", getHTML(t, h, "/suppression?customer=beta&address=gone%40example.org"), "<b class=\"ok\">not suppressed</b>")
	// Without a customer only the global key; the global entry holds.
	l = getJSON[console.Suppression](t, h, "/suppression?address="+consoletest.GlobalAddress).Lookup
	if !l.Suppressed || len(l.Keys) != 1 || l.Keys[0].Reason != schemas.SuppressUnsubscribe || !l.Keys[0].Expires.IsZero() {
		t.Errorf("global lookup %+v", l)
	}
	l = getJSON[console.Suppression](t, h, "/suppression?address=no-at-sign").Lookup
	if l.Error == "" || l.Suppressed {
		t.Errorf("bad address lookup %+v", l)
	}
	contains(t, "bad address", getHTML(t, h, "/suppression?address=%3Cscript%3E"), "&lt;script&gt;: not an address")

	for _, q := range rec.all() {
		if strings.Contains(q, "suppression_") && !strings.Contains(q, "?") {
			t.Errorf("unbounded query:\n%s", q)
		}
	}
}

// With a hash key the page shows digests, and the lookup hashes the
// address it is given to find the entry.
func TestSuppressionPageHashed(t *testing.T) {
	key := "console-test-hash-key-0123456789"
	h, truth, _ := seedSuppression(t, key)
	page := getJSON[console.Suppression](t, h, "/suppression")
	if !page.Hashed {
		t.Error("not marked hashed")
	}
	for _, c := range append(page.LatestAdded, page.LatestRemoved...) {
		if c.Recipient != "" || len(c.RecipientHash) != 32 {
			t.Errorf("change in clear: %+v", c)
		}
	}
	same(t, "latest added", changeWho(page.LatestAdded), truth.LatestAdded)
	_, body := get(t, h, "/suppression", false)
	if strings.Contains(body, consoletest.SuppressedAddress) || strings.Contains(body, key) {
		t.Error("the page holds an address or the hash key")
	}
	l := getJSON[console.Suppression](t, h, "/suppression?customer=acme&address="+consoletest.SuppressedAddress).Lookup
	if l == nil || !l.Suppressed || l.Keys[0].Key != truth.SuppressedKey {
		t.Errorf("hashed lookup %+v", l)
	}
	_, body = get(t, h, "/suppression?customer=acme&address="+consoletest.SuppressedAddress, true)
	if strings.Contains(body, key) {
		t.Error("the lookup shows the hash key")
	}
}

func TestSuppressionRemoveCommandQuotes(t *testing.T) {
	for _, tc := range []struct{ scope, customer, addr, domain, want string }{
		{schemas.SuppressCustomerRecipient, "acme", "gone@example.org", "example.org", "mailmon suppression remove gone@example.org -customer acme"},
		{schemas.SuppressGlobalRecipient, "", "o'brien@example.org", "example.org", `mailmon suppression remove 'o'\''brien@example.org' -global`},
		{schemas.SuppressCustomerDomain, "big co", "x@example.org", "example.org", "mailmon suppression remove example.org -customer 'big co' -domain"},
		{schemas.SuppressCustomerRecipient, "acme", "$(reboot)@example.org", "example.org", "mailmon suppression remove '$(reboot)@example.org' -customer acme"},
	} {
		if got := console.SuppressionRemoveCommand(tc.scope, tc.customer, tc.addr, tc.domain); got != tc.want {
			t.Errorf("%s %q: %s, want %s", tc.scope, tc.addr, got, tc.want)
		}
	}
}
