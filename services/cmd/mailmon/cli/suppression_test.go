package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

// startSuppression starts a NATS with mailmon's topology and returns a
// config file pointing at it (with extra appended) and the bucket.
func startSuppression(t *testing.T, extra string) (string, jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	ns, _, js := natstest.Start(t)
	ctx := context.Background()
	top, _ := pipelines.Default()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, suppression.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, "nats:\n  url: "+ns.ClientURL()+"\n"+extra), js, kv
}

// suppressionEvents reads every event of the SUPPRESSION stream.
func suppressionEvents(t *testing.T, js jetstream.JetStream) (added []*schemas.SuppressionAdded, removed []*schemas.SuppressionRemoved) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "SUPPRESSION")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := schemas.Decode(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.(type) {
		case *schemas.SuppressionAdded:
			added = append(added, e)
		case *schemas.SuppressionRemoved:
			removed = append(removed, e)
		}
	}
	return added, removed
}

func suppressionEntries(t *testing.T, kv jetstream.KeyValue) map[string]suppression.Entry {
	t.Helper()
	out := map[string]suppression.Entry{}
	if _, err := eachSuppressionEntry(context.Background(), kv, []string{">"}, func(e suppression.Entry) { out[e.Key] = e }); err != nil {
		t.Fatal(err)
	}
	return out
}

func runSuppressionOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runMain(t, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestSuppressionAddListExplainRemove(t *testing.T) {
	cfg, js, kv := startSuppression(t, "suppression:\n  dry_run_customers: [trial]\n")

	out := runSuppressionOK(t, "suppression", "add", "Gone.User@EXAMPLE.org", "-customer", "acme", "-reason", "unsubscribe", "-for", "720h", "-by", "ops", "-note", "asked by phone", "-config", cfg)
	if !strings.Contains(out, "added customer_recipient of customer acme Gone.User@example.org for unsubscribe, expires 20") {
		t.Errorf("add: %s", out)
	}
	runSuppressionOK(t, "suppression", "add", "spam-trap.example", "-customer", "acme", "-domain", "-by", "ops", "-config", cfg)
	runSuppressionOK(t, "suppression", "add", "Gone.User@example.org", "-global", "-reason", "complaint", "-by", "ops", "-config", cfg)
	if code, _, errOut := runMain(t, "suppression", "add", "Gone.User@EXAMPLE.ORG", "-customer", "acme", "-by", "ops", "-config", cfg); code != exitFailure || !strings.Contains(errOut, "already suppressed") {
		t.Errorf("second add: exit %d %s", code, errOut)
	}

	got := suppressionEntries(t, kv)
	if len(got) != 3 {
		t.Fatalf("entries %v", got)
	}
	h := suppression.NewHasher("")
	key := h.Key(suppression.Target{Scope: schemas.SuppressCustomerRecipient, Customer: "acme", Value: "Gone.User@example.org"})
	e := got[key]
	if e.Reason != schemas.SuppressUnsubscribe || e.Operator != "ops" || e.Note != "asked by phone" ||
		e.Expires.Sub(e.Created) != 720*time.Hour || e.Recipient != "Gone.User@example.org" {
		t.Errorf("entry %+v", e)
	}
	domainEntry := got[h.Key(suppression.Target{Scope: schemas.SuppressCustomerDomain, Customer: "acme", Value: "spam-trap.example"})]
	if domainEntry.Reason != schemas.SuppressManual || !domainEntry.Expires.IsZero() {
		t.Errorf("manual domain entry (never expires by default): %+v", domainEntry)
	}

	out = runSuppressionOK(t, "suppression", "list", "-config", cfg)
	for _, want := range []string{"customer_recipient  acme", "global_recipient", "customer_domain", "spam-trap.example", "unsubscribe", "complaint", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	out = runSuppressionOK(t, "suppression", "list", "-reason", "complaint", "-json", "-config", cfg)
	var listed suppression.Entry
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &listed) != nil || listed.Scope != schemas.SuppressGlobalRecipient {
		t.Errorf("list -reason complaint -json:\n%s", out)
	}
	code, out, errOut := runMain(t, "suppression", "list", "-limit", "2", "-config", cfg)
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(errOut, "-limit 0") {
		t.Errorf("list -limit 2: %d\n%s%s", code, out, errOut)
	}

	out = runSuppressionOK(t, "suppression", "explain", "Gone.User@Example.ORG", "-customer", "acme", "-config", cfg)
	for _, want := range []string{
		"address: Gone.User@example.org (domain example.org)", "customer: acme (dry run: no)",
		"customer_recipient " + key + ": in force", "reason: unsubscribe", "by: ops asked by phone",
		"customer_domain", ": none", "global_recipient", "reason: complaint",
		"verdict: suppressed: the policy service answers REJECT 5.1.1", "history:", "added   customer_recipient unsubscribe",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	// The domain entry matches any address of the domain.
	out = runSuppressionOK(t, "suppression", "explain", "anyone@Spam-Trap.example", "-customer", "acme", "-config", cfg)
	if !strings.Contains(out, "reason: manual") || !strings.Contains(out, "verdict: suppressed") {
		t.Errorf("explain of a domain entry:\n%s", out)
	}
	out = runSuppressionOK(t, "suppression", "explain", "anyone@spam-trap.example", "-customer", "trial", "-config", cfg)
	if !strings.Contains(out, "dry run: yes") || !strings.Contains(out, "verdict: not suppressed") {
		t.Errorf("explain for another customer:\n%s", out)
	}

	out = runSuppressionOK(t, "suppression", "remove", "Gone.User@example.ORG", "-customer", "acme", "-by", "ops", "-note", "resubscribed", "-config", cfg)
	if !strings.Contains(out, "removed customer_recipient of customer acme Gone.User@example.org (unsubscribe since 20") {
		t.Errorf("remove: %s", out)
	}
	if code, _, errOut := runMain(t, "suppression", "remove", "Gone.User@example.org", "-customer", "acme", "-by", "ops", "-config", cfg); code != exitFailure || !strings.Contains(errOut, "not on the") {
		t.Errorf("second remove: exit %d %s", code, errOut)
	}
	out = runSuppressionOK(t, "suppression", "explain", "Gone.User@example.org", "-customer", "acme", "-config", cfg)
	if !strings.Contains(out, "customer_recipient "+key+": none") || !strings.Contains(out, "removed customer_recipient unsubscribe (manual)") ||
		!strings.Contains(out, "by mailmon-cli/ops resubscribed") {
		t.Errorf("explain after remove:\n%s", out)
	}
	out = runSuppressionOK(t, "suppression", "explain", "Gone.User@example.org", "-customer", "acme", "-since", "1ns", "-config", cfg)
	if !strings.Contains(out, "history: none in the SUPPRESSION stream since") {
		t.Errorf("explain -since 1ns:\n%s", out)
	}
	// The history is read for a bounded time: with none, after one event.
	var hist strings.Builder
	if err := printSuppressionHistory(context.Background(), js, map[string]string{key: "customer_recipient"}, time.Time{}, 0, &hist); err != nil ||
		!strings.Contains(hist.String(), "incomplete: stopped after 1 events in 0s, 3 newer ones not read") {
		t.Errorf("history without time: %v\n%s", err, hist.String())
	}
	added, removed := suppressionEvents(t, js)
	if len(added) != 3 || len(removed) != 1 || removed[0].Key != key || removed[0].Cause != schemas.UnsuppressManual || removed[0].AddedID != e.AddedID {
		t.Errorf("events: %d added, %d removed %+v", len(added), len(removed), removed)
	}

	for _, args := range [][]string{
		{"add", "x@example.org", "-by", "ops"},                              // neither -customer nor -global
		{"add", "x@example.org", "-customer", "a", "-global", "-by", "ops"}, // both
		{"add", "x@example.org", "-global", "-domain", "-by", "ops"},        // no global domain list
		{"add", "x@example.org", "-customer", "a", "-reason", "bored"},      // unknown reason
		{"add", "x@example.org", "-customer", "a", "-for", "1h", "-until", "2030-01-01T00:00:00Z"},
		{"release", "-by", "ops"}, // no customer
		{"explain"},               // no address
	} {
		if code, _, _ := runMain(t, append(append([]string{"suppression"}, args...), "-config", cfg)...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, errOut := runMain(t, "suppression", "add", "not-an-address", "-customer", "a", "-by", "ops", "-config", cfg); code != exitFailure || !strings.Contains(errOut, "not an address") {
		t.Errorf("bad address: %d %s", code, errOut)
	}
}

func TestSuppressionReleaseByCustomerAndReason(t *testing.T) {
	cfg, js, kv := startSuppression(t, "")
	for _, a := range [][]string{
		{"a@example.org", "-customer", "acme", "-reason", "hard_bounce"},
		{"b@example.org", "-customer", "acme", "-reason", "hard_bounce"},
		{"c@example.org", "-customer", "acme", "-reason", "complaint"},
		{"a@example.org", "-customer", "other", "-reason", "hard_bounce"},
		{"a@example.org", "-global", "-reason", "hard_bounce"},
	} {
		runSuppressionOK(t, append(append([]string{"suppression", "add"}, a...), "-by", "ops", "-config", cfg)...)
	}
	out := runSuppressionOK(t, "suppression", "release", "-customer", "acme", "-reason", "hard_bounce", "-dry-run", "-config", cfg)
	if !strings.Contains(out, "would release 2 entries of customer acme, reason hard_bounce") || !strings.Contains(out, "b@example.org") || strings.Contains(out, "c@example.org") {
		t.Errorf("dry run:\n%s", out)
	}
	if n := len(suppressionEntries(t, kv)); n != 5 {
		t.Fatalf("dry run changed the bucket: %d entries", n)
	}
	out = runSuppressionOK(t, "suppression", "release", "-customer", "acme", "-reason", "hard_bounce", "-by", "ops", "-note", "ESP migration", "-config", cfg)
	if !strings.Contains(out, "released 2 entries of customer acme, reason hard_bounce") {
		t.Errorf("release: %s", out)
	}
	left := suppressionEntries(t, kv)
	var who []string
	for _, e := range left {
		who = append(who, e.Customer+"/"+e.Recipient+"/"+e.Reason)
	}
	if len(left) != 3 {
		t.Fatalf("left after release: %v", who)
	}
	for _, e := range left {
		if e.Customer == "acme" && e.Reason == schemas.SuppressHardBounce {
			t.Errorf("not released: %+v", e)
		}
	}
	_, removed := suppressionEvents(t, js)
	if len(removed) != 2 || removed[0].Cause != schemas.UnsuppressReleased || removed[0].Operator != "ops" || removed[0].Note != "ESP migration" {
		t.Errorf("removed events %+v", removed)
	}
	out = runSuppressionOK(t, "suppression", "release", "-customer", "acme", "-by", "ops", "-config", cfg)
	if !strings.Contains(out, "released 1 entries of customer acme") || len(suppressionEntries(t, kv)) != 2 {
		t.Errorf("release of the rest: %s", out)
	}
}

func TestSuppressionImportTwiceAndExportRoundTrip(t *testing.T) {
	cfg, js, kv := startSuppression(t, "")
	dir := t.TempDir()
	file := filepath.Join(dir, "sendgrid.csv")
	csv := "email,created,reason,status\n" +
		"gone@example.org,1793694600,bounce,5.1.1\n" +
		"Spam.Reporter@Example.net,2026-11-03 08:30:00,Spam Complaint,\n" +
		"left@example.com,,unsubscribed,\n" +
		"no-at-sign,,bounce,\n" +
		"quiet@example.com,,,\n" +
		"gone@EXAMPLE.org,1793694600,bounce,5.1.1\n" + // the first row again
		"long-gone@example.org,2020-01-01 00:00:00,bounce,\n" // expired in 2020
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, "suppression", "import", file, "-customer", "acme", "-dry-run", "-config", cfg)
	if code != exitFailure || !strings.Contains(out, "4 would be added") || !strings.Contains(errOut, "line 5: address") || len(suppressionEntries(t, kv)) != 0 {
		t.Errorf("dry run: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runMain(t, "suppression", "import", file, "-customer", "acme", "-by", "ops", "-config", cfg)
	if code != exitFailure || !strings.Contains(out, "4 added, 2 skipped (0 already suppressed, 1 expired, 1 repeated in the file), 1 errors") {
		t.Errorf("first import: %d\n%s%s", code, out, errOut)
	}
	first := suppressionEntries(t, kv)
	if len(first) != 4 {
		t.Fatalf("entries %v", first)
	}
	for _, e := range first {
		switch e.Recipient {
		case "gone@example.org":
			if e.Reason != schemas.SuppressHardBounce || e.Status != "5.1.1" || e.Created.Unix() != 1793694600 ||
				e.Expires.Sub(e.Created) != 90*24*time.Hour || e.Note != "import sendgrid.csv" || e.Operator != "ops" {
				t.Errorf("bounce row: %+v", e)
			}
		case "Spam.Reporter@example.net":
			if e.Reason != schemas.SuppressComplaint || !e.Expires.IsZero() {
				t.Errorf("complaint row: %+v", e)
			}
		case "quiet@example.com":
			if e.Reason != schemas.SuppressManual {
				t.Errorf("row without a reason takes -reason's default: %+v", e)
			}
		}
		if e.Customer != "acme" || e.Scope != schemas.SuppressCustomerRecipient {
			t.Errorf("customer from the flag: %+v", e)
		}
	}
	added, _ := suppressionEvents(t, js)
	code, out, errOut = runMain(t, "suppression", "import", file, "-customer", "acme", "-by", "ops", "-config", cfg)
	if code != exitFailure || !strings.Contains(out, "0 added, 6 skipped (4 already suppressed, 1 expired, 1 repeated in the file), 1 errors") {
		t.Errorf("second import: %d\n%s%s", code, out, errOut)
	}
	again, _ := suppressionEvents(t, js)
	second := suppressionEntries(t, kv)
	for k, e := range first {
		if second[k].AddedID != e.AddedID {
			t.Errorf("second import replaced %s", k)
		}
	}
	if len(second) != 4 || len(again) != len(added) {
		t.Errorf("second import: %d entries, %d added events (was %d)", len(second), len(again), len(added))
	}

	// Export, release everything, import the export: the same entries.
	export := runSuppressionOK(t, "suppression", "export", "-config", cfg)
	if !strings.HasPrefix(export, "email,customer,scope,reason,created_at,expires_at,bounce_category,status,recipient_hash,recipient_domain,note\n") ||
		strings.Count(export, "\n") != 5 || !strings.Contains(export, "gone@example.org,acme,customer_recipient,hard_bounce,2026-11-03T08:30:00Z") {
		t.Errorf("export:\n%s", export)
	}
	if out := runSuppressionOK(t, "suppression", "export", "-reason", "complaint", "-config", cfg); strings.Count(out, "\n") != 2 {
		t.Errorf("export -reason complaint:\n%s", out)
	}
	runSuppressionOK(t, "suppression", "release", "-customer", "acme", "-by", "ops", "-config", cfg)
	if n := len(suppressionEntries(t, kv)); n != 0 {
		t.Fatalf("%d entries after release", n)
	}
	exported := filepath.Join(dir, "export.csv")
	if err := os.WriteFile(exported, []byte(export), 0o600); err != nil {
		t.Fatal(err)
	}
	out = runSuppressionOK(t, "suppression", "import", exported, "-by", "ops", "-config", cfg)
	if !strings.Contains(out, "4 added, 0 skipped") {
		t.Errorf("import of the export: %s", out)
	}
	back := suppressionEntries(t, kv)
	for k, e := range first {
		b, ok := back[k]
		if !ok || b.Reason != e.Reason || !b.Created.Equal(e.Created) || !b.Expires.Equal(e.Expires) || b.Recipient != e.Recipient ||
			b.Status != e.Status || b.Note != e.Note || b.RecipientDomain != e.RecipientDomain {
			t.Errorf("round trip of %s: %+v, was %+v", k, b, e)
		}
	}
	if reexport := runSuppressionOK(t, "suppression", "export", "-config", cfg); !sameSuppressionLines(reexport, export) {
		t.Errorf("export after the round trip:\n%s\nwas\n%s", reexport, export)
	}

	// Released, the original file imports again as new entries with new
	// events: an event id used twice would be dropped as a duplicate.
	runSuppressionOK(t, "suppression", "release", "-customer", "acme", "-by", "ops", "-config", cfg)
	before, _ := suppressionEvents(t, js)
	code, out, errOut = runMain(t, "suppression", "import", file, "-customer", "acme", "-by", "ops", "-config", cfg)
	if code != exitFailure || !strings.Contains(out, "4 added, 2 skipped") {
		t.Errorf("import after release: %d\n%s%s", code, out, errOut)
	}
	after, _ := suppressionEvents(t, js)
	third := suppressionEntries(t, kv)
	if len(after) != len(before)+4 || len(third) != 4 {
		t.Errorf("import after release: %d added events (was %d), %d entries", len(after), len(before), len(third))
	}
	for k, e := range third {
		if e.AddedID == first[k].AddedID {
			t.Errorf("%s imported again with its first id %s", k, e.AddedID)
		}
	}
}

func TestSuppressionHashedExportAndExplain(t *testing.T) {
	cfg, _, kv := startSuppression(t, "suppression:\n  hash_key: test-hash-key-0123456789abcdef\n")
	runSuppressionOK(t, "suppression", "add", "Secret.Person@example.org", "-customer", "acme", "-reason", "complaint", "-by", "ops", "-config", cfg)
	for _, e := range suppressionEntries(t, kv) {
		if e.Recipient != "" || strings.Contains(string(e.Marshal()), "Secret.Person") {
			t.Errorf("stored in clear: %s", e.Marshal())
		}
	}
	out := runSuppressionOK(t, "suppression", "list", "-config", cfg)
	if strings.Contains(out, "Secret.Person") || !strings.Contains(out, "hash:") || strings.Contains(out, "test-hash-key") {
		t.Errorf("list:\n%s", out)
	}
	export := runSuppressionOK(t, "suppression", "export", "-config", cfg)
	if strings.Contains(export, "Secret.Person") || strings.Contains(export, "test-hash-key") || !strings.Contains(export, "\n,acme,customer_recipient,complaint,") {
		t.Errorf("export holds the address:\n%s", export)
	}
	out = runSuppressionOK(t, "suppression", "explain", "Secret.Person@EXAMPLE.org", "-customer", "acme", "-config", cfg)
	if !strings.Contains(out, "keyed digests") || !strings.Contains(out, "reason: complaint") || !strings.Contains(out, "verdict: suppressed") ||
		strings.Contains(out, "test-hash-key") {
		t.Errorf("explain:\n%s", out)
	}
	// The hashed export imports again under the same key.
	runSuppressionOK(t, "suppression", "release", "-customer", "acme", "-by", "ops", "-config", cfg)
	file := filepath.Join(t.TempDir(), "export.csv")
	if err := os.WriteFile(file, []byte(export), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := runSuppressionOK(t, "suppression", "import", file, "-by", "ops", "-config", cfg); !strings.Contains(out, "1 added") {
		t.Errorf("import of the hashed export: %s", out)
	}
	if out := runSuppressionOK(t, "suppression", "explain", "Secret.Person@example.org", "-customer", "acme", "-config", cfg); !strings.Contains(out, "verdict: suppressed") {
		t.Errorf("explain after importing the hashed export:\n%s", out)
	}
	// Without the hash key the digests mean nothing: refused by row.
	plain := writeConfig(t, "nats:\n  url: "+suppressionNATSURL(t, cfg)+"\n")
	code, out, errOut := runMain(t, "suppression", "import", file, "-by", "ops", "-config", plain)
	if code != exitFailure || !strings.Contains(out, "0 added") || !strings.Contains(errOut, "line 2: a row with only recipient_hash needs suppression.hash_key") {
		t.Errorf("hashed export imported without the key: %d\n%s%s", code, out, errOut)
	}
}

func sameSuppressionLines(a, b string) bool {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(la) != len(lb) {
		return false
	}
	seen := map[string]int{}
	for _, l := range la {
		seen[l]++
	}
	for _, l := range lb {
		seen[l]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// Against the embedded server of a running mailmon, `mailmon suppression`
// connects as suppression-cli with the password mailmon generated under
// data_dir: its grants cover every subcommand (bucket reads, writes and
// watches, the events, the SUPPRESSION history).
func TestSuppressionAsItsOwnUserOnTheEmbeddedServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	cfgPath := writeConfig(t, fmt.Sprintf("data_dir: %s\nnats:\n  embedded:\n    listen: %s\n", t.TempDir(), listen))
	cfg, err := app.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt, err := app.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	file := filepath.Join(t.TempDir(), "list.csv")
	if err := os.WriteFile(file, []byte("email,reason\nimported@example.org,complaint\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"add", "gone@example.org", "-customer", "acme", "-reason", "hard_bounce", "-by", "ops"},
		{"import", file, "-customer", "acme", "-by", "ops"},
		{"list"},
		{"explain", "gone@example.org", "-customer", "acme"},
		{"export"},
		{"remove", "gone@example.org", "-customer", "acme", "-by", "ops"},
		{"release", "-customer", "acme", "-by", "ops"},
	} {
		code, out, errOut := runMain(t, append(append([]string{"suppression"}, args...), "-config", cfgPath)...)
		if code != 0 {
			t.Fatalf("suppression %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		if args[0] == "explain" && !strings.Contains(out, "added   customer_recipient hard_bounce") {
			t.Errorf("explain read no history:\n%s", out)
		}
		if args[0] == "release" && !strings.Contains(out, "released 1 entries") {
			t.Errorf("release: %s", out)
		}
	}
}

// natsURL is the nats.url of a config file written by startSuppression.
func suppressionNATSURL(t *testing.T, cfgPath string) string {
	t.Helper()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "url: "); ok {
			return u
		}
	}
	t.Fatalf("no nats url in %s", cfgPath)
	return ""
}
