package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestCountLogLines(t *testing.T) {
	data := []byte(strings.Join([]string{
		"Mar  2 03:04:05 mx postfix/smtpd[1]: connect from a[192.0.2.1]",
		"Mar  2 03:04:05 mx postfix/smtp[2]: 1A2B3C4D5: to=<a@example.org>, relay=none, delay=1, delays=1/0/0/0, dsn=5.4.4, status=bounced (no)",
		"Mar  2 03:04:05 mx postfix/qmgr[3]: 1A2B3C4D5: from=<b@example.com>, status=expired, returned to sender",
		"Mar  2 03:04:05 mx postfix/qmgr[3]: 1A2B3C4D5: removed",
	}, "\n"))
	if lines, status := countLogLines(data); lines != 4 || status != 2 {
		t.Errorf("lines %d status %d, want 4 and 2", lines, status)
	}
	if lines, status := countLogLines(append(data, '\n')); lines != 4 || status != 2 {
		t.Errorf("with a final newline: lines %d status %d", lines, status)
	}
}

// The scenario end to end on a small input: mailmon is built, both tools
// run, every status line comes out as a record, and the JSON line has the
// figures.
func TestPostfixParseScenario(t *testing.T) {
	needCorpora(t, "postfix", "logs")
	if _, err := findPflogsumm(""); err != nil {
		unavailable(t, "%v", err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"postfix-parse", "-lines", "60000", "-runs", "1"}, &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res postfixParseResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last stdout line is not the result: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if code != 0 || res.Error != "" {
		t.Fatalf("exit %d, error %q\n%s", code, res.Error, stderr.String())
	}
	if res.Scenario != "postfix-parse" || res.Lines < 60000 || res.Unparsed != 0 || res.StatusLines == 0 ||
		res.Deliveries != res.StatusLines || res.OursPerS <= 0 || res.BaselinePerS <= 0 || res.Ratio <= 0 {
		t.Errorf("result %+v", res)
	}
	t.Logf("%s", lines[len(lines)-1])
}
