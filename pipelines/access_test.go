package pipelines

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mailmon/mailmon/schemas"
)

var update = flag.Bool("update", false, "rewrite deploy/cluster/accounts.conf from the access data")

func defaultAccess(t *testing.T) (Access, Topology) {
	t.Helper()
	top, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	a, err := DefaultAccess()
	if err != nil {
		t.Fatal(err)
	}
	return a, top
}

// Every event kind has a user that may publish it, and only the evaluator
// and the lift command may write the enforcement bucket.
func TestAccessCoversEveryKindAndGuardsEnforcement(t *testing.T) {
	a, top := defaultAccess(t)
	grants := a.Grants(top)
	for _, k := range schemas.Kinds() {
		var publishers []string
		for _, g := range grants {
			if g.User != UserAdmin && allows(g.Publish, k.Subject) {
				publishers = append(publishers, g.User)
			}
		}
		if len(publishers) == 0 {
			t.Errorf("%s: no user but admin may publish %s", k.Type, k.Subject)
		}
	}
	var writers []string
	for _, g := range grants {
		if allows(g.Publish, "$KV.enforcement.customer:acme") {
			writers = append(writers, g.User)
		}
	}
	if want := []string{"complaint-evaluator", UserEnforcementCLI, UserAdmin}; !slices.Equal(writers, want) {
		t.Errorf("enforcement writers %v, want %v", writers, want)
	}
}

func TestGrantsKeepUsersApart(t *testing.T) {
	a, top := defaultAccess(t)
	grant := map[string]Grant{}
	for _, g := range a.Grants(top) {
		grant[g.User] = g
	}
	tests := []struct {
		user, subject string
		publish, want bool
	}{
		{"clickhouse-sink", "$JS.API.CONSUMER.MSG.NEXT.COMPLAINT.clickhouse-sink", true, true},
		{"clickhouse-sink", "$JS.ACK.COMPLAINT.clickhouse-sink.1.2.3.4.5", true, true},
		{"clickhouse-sink", "mailmon.dlq.clickhouse-sink", true, true},
		{"clickhouse-sink", "mailmon.dlq.fbl-ingester", true, false},
		{"clickhouse-sink", "mailmon.complaint.received", true, false},
		{"clickhouse-sink", "$JS.API.CONSUMER.MSG.NEXT.ALERT.notifier", true, false},
		{"clickhouse-sink", "_INBOX.clickhouse-sink.abc", false, true},
		{"clickhouse-sink", "_INBOX.complaint-evaluator.abc", false, false},
		{"clickhouse-sink", "mailmon.complaint.received", false, false},
		{"policy-service", "$KV.enforcement.customer:acme", true, false},
		{"policy-service", "$JS.API.DIRECT.GET.KV_enforcement.$KV.enforcement.customer:acme", true, true},
		{"policy-service", "$JS.API.CONSUMER.CREATE.KV_enforcement.abc.$KV.enforcement.>", true, true},
		{"policy-service", "$JS.API.DIRECT.GET.KV_probe_pending.$KV.probe_pending.x", true, false},
		{"complaint-evaluator", "$KV.enforcement.customer:acme", true, true},
		{"complaint-evaluator", "$JS.API.CONSUMER.MSG.NEXT.COMPLAINT.ordered_1", true, true},
		{"complaint-evaluator", "$JS.API.CONSUMER.MSG.NEXT.COMPLAINT.clickhouse-sink", true, false},
		{"complaint-evaluator", "$JS.API.CONSUMER.CREATE.DELIVERY.dns-sweeper.mailmon.delivery.>", true, false},
		{"complaint-evaluator", "mailmon.decision.lift", true, false},
		{"enforcement-cli", "mailmon.decision.lift", true, true},
		{"enforcement-cli", "mailmon.decision.cutoff", true, false},
		{"subscriber", "mailmon.complaint.received", false, true},
		{"subscriber", "mailmon.dlq.fbl-ingester", false, false},
		{"subscriber", "$KV.enforcement.x", false, false},
		{"subscriber", "mailmon.alert.raised", true, false},
		{"subscriber", "$KV.enforcement.x", true, false},
		{"subscriber", "$JS.API.CONSUMER.DURABLE.CREATE.COMPLAINT.sub-crm", true, true},
		{"subscriber", "$JS.API.CONSUMER.MSG.NEXT.COMPLAINT.sub-crm", true, true},
		{"subscriber", "$JS.ACK.COMPLAINT.sub-crm.1.2.3.4.5", true, true},
		{"subscriber", "$JS.API.CONSUMER.MSG.NEXT.COMPLAINT.clickhouse-sink", true, false},
		{"subscriber", "$JS.ACK.COMPLAINT.clickhouse-sink.1.2.3.4.5", true, false},
		{"subscriber", "$JS.API.CONSUMER.DELETE.ALERT.notifier", true, false},
		{"subscriber", "$JS.API.CONSUMER.MSG.NEXT.DLQ.x", true, false},
		{"subscriber", "$JS.API.CONSUMER.MSG.NEXT.KV_enforcement.x", true, false},
		{"subscriber", "$JS.API.STREAM.DELETE.COMPLAINT", true, false},
	}
	for _, tt := range tests {
		g, ok := grant[tt.user]
		if !ok {
			t.Fatalf("no user %s", tt.user)
		}
		rules, verb := g.Subscribe, "subscribe"
		if tt.publish {
			rules, verb = g.Publish, "publish"
		}
		if got := allows(rules, tt.subject); got != tt.want {
			t.Errorf("%s may %s %s: %v, want %v", tt.user, verb, tt.subject, got, tt.want)
		}
	}
}

// allows applies NATS's rule: some allow pattern matches and no deny does.
func allows(r SubjectRules, subject string) bool {
	match := func(patterns []string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool { return Contains(p, subject) })
	}
	return match(r.Allow) && !match(r.Deny)
}

func TestParseAccessRejectsBrokenDeclarations(t *testing.T) {
	top, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	base := "  - {name: admin, role: admin}\n  - {name: subscriber, role: subscriber}\n" +
		"  - {name: clickhouse-sink, role: worker}\n  - {name: dns-sweeper, role: worker}\n" +
		"  - {name: notifier, role: worker}\n  - {name: mailbox-retriever, role: worker}\n"
	tests := map[string]struct{ doc, want string }{
		"unknown bucket":     {"users:\n" + base + "  - {name: x, role: worker, buckets: {nope: read}}\n", `unknown bucket "nope"`},
		"bad level":          {"users:\n" + base + "  - {name: x, role: worker, buckets: {enforcement: all}}\n", `"all" is not read or write`},
		"wildcard publish":   {"users:\n" + base + "  - {name: x, role: worker, publish: [mailmon.>]}\n", "not wildcards"},
		"uncaptured publish": {"users:\n" + base + "  - {name: x, role: worker, publish: [other.thing]}\n", "captured by no stream"},
		"unknown stream":     {"users:\n" + base + "  - {name: x, role: worker, read_streams: [NOPE]}\n", `unknown stream "NOPE"`},
		"name not a token":   {"users:\n" + base + "  - {name: a.b, role: worker}\n", "lower-case letters"},
		"duplicate":          {"users:\n" + base + "  - {name: notifier, role: worker}\n", "declared twice"},
		"orphan durable":     {"users:\n  - {name: admin, role: admin}\n  - {name: subscriber, role: subscriber}\n", "no worker user named clickhouse-sink"},
		"no admin":           {"users:\n" + strings.Replace(base, "role: admin", "role: cli", 1), "one admin user"},
		"unknown key":        {"users:\n" + base + "  - {name: x, role: worker, subscribe: [a]}\n", "field subscribe not found"},
		"subscriber extras":  {"users:\n" + strings.Replace(base, "role: subscriber}", "role: subscriber, publish: [mailmon.alert.raised]}", 1), "takes no publish"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseAccess([]byte(tt.doc), top)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseAccess error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// The cluster example's accounts are generated from the same data; each
// node's configuration includes them and must load in nats-server.
func TestClusterAccountsMatchTheAccessData(t *testing.T) {
	a, top := defaultAccess(t)
	var buf bytes.Buffer
	if err := a.WriteNATSConf(&buf, top); err != nil {
		t.Fatal(err)
	}
	const path = "../deploy/cluster/accounts.conf"
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checked, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(checked, buf.Bytes()) {
		t.Errorf("%s differs from what the access data generates; rewrite it with go test ./pipelines -run %s -update", path, t.Name())
	}

	t.Setenv("SYS_PASSWORD", "sys-test-password")
	for _, name := range a.Names() {
		t.Setenv(PasswordEnv(name), name+"-test-password")
	}
	for _, node := range []string{"nats-n1.conf", "nats-n2.conf", "nats-n3.conf"} {
		opts, err := server.ProcessConfigFile(filepath.Join("..", "deploy", "cluster", node))
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		users := map[string]*server.User{}
		for _, u := range opts.Users {
			users[u.Username] = u
		}
		for _, g := range a.Grants(top) {
			u, ok := users[g.User]
			if !ok {
				t.Errorf("%s: no user %s", node, g.User)
				continue
			}
			if u.Password != g.User+"-test-password" {
				t.Errorf("%s: user %s does not take its password from $%s", node, g.User, PasswordEnv(g.User))
			}
			if u.Account == nil || u.Account.Name != "MAILMON" {
				t.Errorf("%s: user %s is not in the MAILMON account", node, g.User)
			}
			p := u.Permissions
			if p == nil || p.Publish == nil || p.Subscribe == nil ||
				!slices.Equal(p.Publish.Allow, g.Publish.Allow) || !slices.Equal(p.Publish.Deny, g.Publish.Deny) ||
				!slices.Equal(p.Subscribe.Allow, g.Subscribe.Allow) {
				t.Errorf("%s: user %s: permissions differ from the access data", node, g.User)
			}
		}
	}
}
