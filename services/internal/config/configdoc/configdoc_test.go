package configdoc

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/config"
)

// fixtureRoot stands in for a root config.
type fixtureRoot struct {
	// Server is where to connect. It is
	// wrapped over two lines.
	Server fixtureServer `yaml:"server"`
	// Items are the things; see RetryMin.
	Items []fixtureItem `yaml:"items"`
	Level string        `yaml:"level"` // debug or info
	Bare  int           `yaml:"bare"`
	// RetryMin and RetryMax bound the backoff.
	RetryMin config.Duration `yaml:"retry_min"`
	RetryMax config.Duration `yaml:"retry_max"`
	Hidden   string          `yaml:"-"`
}

type fixtureServer struct {
	// Addr is host:port.
	Addr string `yaml:"addr"`
	// Password comes from the environment.
	Password config.Secret `yaml:"password"`
}

type fixtureItem struct {
	// Name names the item.
	Name string `yaml:"name"`
	// Tags label it, e.g. <kind>=<value> | more.
	Tags []string `yaml:"tags"`
}

func fixtureSource(t *testing.T) *Source {
	t.Helper()
	dir, err := ModuleDir(".")
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestFieldsReadDocLineAndSharedComments(t *testing.T) {
	fields, err := fixtureSource(t).Fields(reflect.TypeFor[fixtureRoot]())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Field{}
	var keys []string
	for _, f := range fields {
		got[f.Key] = f
		keys = append(keys, f.Key)
	}
	if want := []string{"server", "items", "level", "bare", "retry_min", "retry_max"}; !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q (hidden fields left out)", keys, want)
	}
	if d := got["server"].Doc; d != "server is where to connect. It is wrapped over two lines." {
		t.Errorf("server doc %q", d)
	}
	if d := got["items"].Doc; d != "items are the things; see retry_min." {
		t.Errorf("items doc %q: sibling Go names should read as keys", d)
	}
	if l := got["level"].Line; l != "debug or info" {
		t.Errorf("level line comment %q", l)
	}
	if got["bare"].Documented() {
		t.Errorf("bare has no comment but counts as documented")
	}
	if f := got["retry_max"]; !f.Shared || f.Doc != "retry_min and retry_max bound the backoff." {
		t.Errorf("retry_max: %+v, want the shared comment of retry_min", f)
	}
}

func TestUndocumentedNamesEveryKeyWithoutComment(t *testing.T) {
	missing, err := Undocumented(fixtureSource(t), reflect.TypeFor[fixtureRoot]())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bare"}; !slices.Equal(missing, want) {
		t.Errorf("undocumented %q, want %q", missing, want)
	}
}

func TestExampleYAMLWritesCommentsValuesAndRawSecrets(t *testing.T) {
	example := fixtureRoot{
		Server:   fixtureServer{Addr: "127.0.0.1:1", Password: "${env:PW:-example-only-x}"},
		Items:    []fixtureItem{{Name: "a", Tags: []string{"x", "y"}}, {Name: "b"}},
		Level:    "info",
		RetryMin: config.Duration(1e9),
		RetryMax: config.Duration(3600e9),
	}
	out, err := ExampleYAML(fixtureSource(t), example, "# header")
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"# header\n",
		"# server is where to connect. It is wrapped over two lines.\nserver:\n",
		"  password: ${env:PW:-example-only-x}\n",
		"level: info # debug or info\n",
		"retry_max: 1h\n",
		"    tags: [x, \"y\"]\n",
		"  - name: b\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("example lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "[REDACTED]") {
		t.Errorf("a secret's example text was redacted:\n%s", text)
	}
	if strings.Count(text, "# name names the item.") != 1 {
		t.Errorf("the first list entry alone should carry comments:\n%s", text)
	}
}

func TestTableAndReplaceTable(t *testing.T) {
	table, err := Table(fixtureSource(t), fixtureRoot{Level: "info", RetryMin: config.Duration(1e9)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `server.addr` | `\"\"` | addr is host:port. |\n",
		"| `items[].tags` | `[]` | tags label it, e.g. &lt;kind&gt;=&lt;value&gt; \\| more. |\n",
		"| `level` | `info` | debug or info |\n",
		"| `retry_min` | `1s` | retry_min and retry_max bound the backoff. |\n",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	readme := []byte("# w\n\nintro\n\n" + BeginMarker + "\nold\n" + EndMarker + "\n\n## after\n")
	got, err := ReplaceTable(readme, "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# w\n\nintro\n\n" + BeginMarker + "\nnew\n" + EndMarker + "\n\n## after\n"; string(got) != want {
		t.Errorf("ReplaceTable:\n%s\nwant\n%s", got, want)
	}
	if _, err := ReplaceTable([]byte("no markers"), "x"); err == nil {
		t.Error("a README without markers was accepted")
	}
}

func TestRenameFieldsReadsGoNamesAsKeys(t *testing.T) {
	keys := map[string]string{"IPs": "ips", "CIDRs": "cidrs", "Domains": "domains", "RetryMin": "retry_min",
		"Memory": "memory", "TLSCAFile": "tls_ca_file", "Postfix": "postfix"}
	for _, c := range []struct{ in, want string }{
		{"IPs, CIDRs and Domains are the targets: our sending IPs.", "ips, cidrs and domains are the targets: our sending IPs."},
		{"Repeat counts within Memory; see RetryMin.", "Repeat counts within memory; see retry_min."},
		{"Offences are kept. Memory decides how long.", "Offences are kept. Memory decides how long."},
		{"Adds a CA; prefer TLSCAFile.", "Adds a CA; prefer tls_ca_file."},
		{"Postfix closes its own; Domains below.", "postfix closes its own; domains below."},
		{"Nothing else closes. Postfix does.", "Nothing else closes. Postfix does."},
	} {
		if got := renameFields(c.in, keys, keys); got != c.want {
			t.Errorf("renameFields(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRenameFieldsLeavesSectionNamesInText(t *testing.T) {
	keys := map[string]string{"ClickHouse": "clickhouse", "BatchRows": "batch_rows"}
	inText := map[string]string{"BatchRows": "batch_rows"}
	got := renameFields("ClickHouse stores rows once ClickHouse confirmed BatchRows.", keys, inText)
	if want := "clickhouse stores rows once ClickHouse confirmed batch_rows."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
