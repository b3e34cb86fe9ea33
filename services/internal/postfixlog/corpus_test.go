package postfixlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/corpustest"
)

// corpusDir is the shared corpus's postfix folder (see corpustest; the
// held-out set is scored by pointing MAILMON_CORPORA at it).
func corpusDir(t testing.TB) string {
	return filepath.Dir(corpustest.Path(t, "postfix", "deliveries.jsonl"))
}

// keyRow is one row of deliveries.jsonl.
type keyRow struct {
	File    string     `json:"file"`
	Line    int64      `json:"line"`
	Event   string     `json:"event"`
	TS      string     `json:"ts"`
	Host    string     `json:"host"`
	Program string     `json:"program"`
	Service string     `json:"service"`
	PID     int        `json:"pid"`
	QueueID string     `json:"queue_id"`
	To      *string    `json:"to"`
	OrigTo  *string    `json:"orig_to"`
	Relay   *string    `json:"relay"`
	ConnUse *int       `json:"conn_use"`
	Delay   *float64   `json:"delay"`
	Delays  *[]float64 `json:"delays"`
	DSN     *string    `json:"dsn"`
	Status  string     `json:"status"`
	Reply   *string    `json:"reply"`
}

// readLogRecords parses and joins one log file and returns its records by
// line number.
func readLogRecords(t testing.TB, path string) (map[int64]Record, int, int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &Parser{Ref: time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC)}
	j := NewJoiner(JoinerConfig{})
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	recs := map[int64]Record{}
	var n int64
	lines, unparsed := 0, 0
	var l Line
	for sc.Scan() {
		n++
		lines++
		if !p.Parse(sc.Text(), n, &l) {
			unparsed++
			continue
		}
		if r := j.Add(&l); r != nil {
			recs[n] = r
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs, lines, unparsed
}

func optS(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// compareKey returns the fields of a key row that d does not reproduce.
func compareKey(k keyRow, d *Delivery) []string {
	var bad []string
	eq := func(name string, ok bool) {
		if !ok {
			bad = append(bad, name)
		}
	}
	eqS := func(name string, want *string, got string) {
		if want == nil {
			eq(name, got == "")
		} else {
			eq(name, *want == got)
		}
	}
	feq := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	eq("ts", k.TS == d.RawTime)
	eq("host", k.Host == d.Host)
	eq("program", k.Program == d.Program)
	eq("service", k.Service == d.Agent)
	eq("pid", k.PID == d.PID)
	eq("queue_id", k.QueueID == d.QueueID)
	eq("status", k.Status == d.Status)
	if k.Event == "delivery" {
		eqS("to", k.To, d.Recipient)
	}
	eqS("orig_to", k.OrigTo, d.OrigRecipient)
	eqS("relay", k.Relay, d.Relay)
	if k.ConnUse == nil {
		eq("conn_use", d.ConnUse < 0)
	} else {
		eq("conn_use", *k.ConnUse == d.ConnUse)
	}
	if k.Delay == nil {
		eq("delay", d.Delay < 0)
	} else {
		eq("delay", feq(*k.Delay, d.Delay))
	}
	if k.Delays == nil {
		eq("delays", d.Delays[0] < 0)
	} else {
		ok := len(*k.Delays) == 4
		for i := 0; ok && i < 4; i++ {
			ok = feq((*k.Delays)[i], d.Delays[i])
		}
		eq("delays", ok)
	}
	eqS("dsn", k.DSN, d.DSN)
	eqS("reply", k.Reply, d.Reply)
	return bad
}

// TestCorpusDeliveries scores the parser and joiner on the corpus answer
// key: the fraction of delivery and expiry lines recovered with every field
// exact. The floor is a little under the measured figure.
func TestCorpusDeliveries(t *testing.T) {
	dir := corpusDir(t)
	f, err := os.Open(filepath.Join(dir, "deliveries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byFile := map[string][]keyRow{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	total := 0
	for sc.Scan() {
		var k keyRow
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
			t.Fatal(err)
		}
		byFile[k.File] = append(byFile[k.File], k)
		total++
	}
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	exact, lines, unparsed, records, extra := 0, 0, 0, 0, 0
	fieldMiss := map[string]int{}
	var samples []string
	for _, path := range files {
		name := filepath.Base(path)
		recs, n, u := readLogRecords(t, path)
		lines += n
		unparsed += u
		keyed := map[int64]bool{}
		for _, k := range byFile[name] {
			keyed[k.Line] = true
			r, ok := recs[k.Line]
			d, isD := r.(*Delivery)
			if !ok || !isD {
				fieldMiss["missing"]++
				if len(samples) < 15 {
					samples = append(samples, fmt.Sprintf("%s:%d: no delivery record", name, k.Line))
				}
				continue
			}
			bad := compareKey(k, d)
			if len(bad) == 0 {
				exact++
				continue
			}
			for _, b := range bad {
				fieldMiss[b]++
			}
			if len(samples) < 15 {
				samples = append(samples, fmt.Sprintf("%s:%d: %v", name, k.Line, bad))
			}
		}
		for ln, r := range recs {
			if _, ok := r.(*Delivery); ok {
				records++
				if !keyed[ln] {
					extra++
				}
			}
		}
		delete(byFile, name)
	}
	for name, rows := range byFile {
		t.Errorf("answer key names %s (%d rows) but the log is missing", name, len(rows))
	}
	frac := float64(exact) / float64(total)
	t.Logf("postfix deliveries: %d/%d delivery lines recovered exactly (%.1f%%); %d delivery records, %d not in the key; %d log lines, %d without a recognised header",
		exact, total, 100*frac, records, extra, lines, unparsed)
	keys := make([]string, 0, len(fieldMiss))
	for k := range fieldMiss {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("  field %s wrong on %d lines", k, fieldMiss[k])
	}
	for _, s := range samples {
		t.Logf("  %s", s)
	}
	const floor = 0.97
	if frac < floor {
		t.Errorf("delivery lines recovered exactly: %.3f, below the floor %.2f", frac, floor)
	}
}

// grokCase is one row of grok_cases.jsonl.
type grokCase struct {
	Case     string         `json:"case"`
	Pattern  string         `json:"grok_pattern"`
	Message  string         `json:"message"`
	Expected map[string]any `json:"expected"`
}

// grokProgram maps a grok pattern to the program that logs such messages.
func grokProgram(pattern string) string {
	p := strings.TrimSuffix(strings.TrimPrefix(pattern, "^%{POSTFIX_"), "}$")
	p = strings.TrimSuffix(p, "}")
	return "postfix/" + strings.ReplaceAll(strings.ToLower(p), "_", "-")
}

// grokFields maps what the parser read from a message onto the grok field
// names it covers. Only these fields are scored.
func grokFields(l *Line) map[string]any {
	m := map[string]any{}
	set := func(k string, v any) {
		switch x := v.(type) {
		case string:
			if x == "" {
				return
			}
		case int:
			if x <= 0 {
				return
			}
		}
		m[k] = v
	}
	if l.QueueID != "" {
		set("postfix_queueid", l.QueueID)
	} else if l.Kind == KindReject && strings.Contains(l.Message, "NOQUEUE: ") {
		set("postfix_queueid", "NOQUEUE")
	}
	switch l.Kind {
	case KindDelivery, KindExpired:
		set("postfix_status", l.Status)
		resp := l.Reply
		switch l.Service {
		case "local":
			set("postfix_local_response", resp)
		case "pipe":
			set("postfix_pipe_response", resp)
		case "error":
			set("postfix_error_response", resp)
		default:
			if l.Kind == KindDelivery {
				set("postfix_smtp_response", resp)
			}
		}
		set("postfix_relay_hostname", l.RelayHost)
		set("postfix_relay_ip", l.RelayIP)
		set("postfix_relay_port", l.RelayPort)
		set("postfix_relay_service", l.RelayPath)
		if l.Kind == KindExpired {
			m["postfix_from"] = l.From
		}
	case KindRemote:
		set("postfix_relay_hostname", l.RelayHost)
		set("postfix_relay_ip", l.RelayIP)
		set("postfix_relay_port", l.RelayPort)
		set("postfix_smtp_response", l.Reply)
		set("postfix_smtp_stage", l.Stage)
	case KindMessageID:
		m["postfix_message-id"] = l.MessageID
	case KindClient:
		set("postfix_client_hostname", l.ClientHost)
		set("postfix_client_ip", l.ClientIP)
		set("postfix_client_port", l.ClientPort)
	case KindReject:
		set("postfix_action", l.Action)
		set("postfix_smtp_stage", l.Stage)
		set("postfix_client_hostname", l.ClientHost)
		set("postfix_client_ip", l.ClientIP)
		set("postfix_client_port", l.ClientPort)
		set("postfix_status_code", l.ReplyCode)
		set("postfix_status_code_enhanced", l.DSN)
	}
	return m
}

// grokScored lists the grok fields the parser claims; expected values of
// other fields (TLS, anvil, postscreen, scache, ...) are outside its job.
var grokScored = map[string]bool{
	"postfix_queueid": true, "postfix_status": true, "postfix_smtp_response": true,
	"postfix_local_response": true, "postfix_pipe_response": true, "postfix_error_response": true,
	"postfix_relay_hostname": true, "postfix_relay_ip": true, "postfix_relay_port": true,
	"postfix_relay_service": true, "postfix_message-id": true, "postfix_from": true,
	"postfix_client_hostname": true, "postfix_client_ip": true, "postfix_client_port": true,
	"postfix_action": true, "postfix_smtp_stage": true, "postfix_status_code": true,
	"postfix_status_code_enhanced": true,
}

// grokInScope says whether a case is one of the lines the parser reads:
// lines with a queue id (or NOQUEUE) and the SMTP client's remote-server
// notes. Connection, TLS, anvil, postscreen and daemon messages are not.
func grokInScope(c grokCase) bool {
	if _, ok := c.Expected["postfix_queueid"]; ok {
		return true
	}
	return strings.HasPrefix(c.Message, "connect to ") || strings.HasPrefix(c.Message, "host ")
}

// TestCorpusGrok scores field agreement on the grok cases in scope.
func TestCorpusGrok(t *testing.T) {
	dir := corpusDir(t)
	f, err := os.Open(filepath.Join(dir, "grok_cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	p := &Parser{Ref: time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC)}
	fields, agree, cases, casesExact := 0, 0, 0, 0
	var samples []string
	for sc.Scan() {
		var c grokCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if !grokInScope(c) {
			continue
		}
		cases++
		line := "Jan  2 03:04:05 mx " + grokProgram(c.Pattern) + "[1]: " + strings.TrimRight(c.Message, "\n")
		var l Line
		if !p.Parse(line, 0, &l) {
			t.Errorf("%s: header not parsed", c.Case)
			continue
		}
		got := grokFields(&l)
		ok := true
		for k, want := range c.Expected {
			if !grokScored[k] {
				continue
			}
			fields++
			g, have := got[k]
			if have && fmt.Sprint(g) == fmt.Sprint(want) {
				agree++
				continue
			}
			ok = false
			if len(samples) < 20 {
				samples = append(samples, fmt.Sprintf("%s %s: want %v, got %v", c.Case, k, want, g))
			}
		}
		if ok {
			casesExact++
		}
	}
	frac := float64(agree) / float64(fields)
	t.Logf("grok cases in scope: %d (%d with every scored field right); scored fields agreeing: %d/%d (%.1f%%)", cases, casesExact, agree, fields, 100*frac)
	for _, s := range samples {
		t.Logf("  %s", s)
	}
	const floor = 0.90
	if frac < floor {
		t.Errorf("grok field agreement %.3f below the floor %.2f", frac, floor)
	}
}
