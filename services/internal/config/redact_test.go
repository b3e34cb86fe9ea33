package config

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://user:pa55word@nats-1.example.net:4222", "nats://[REDACTED]@nats-1.example.net:4222"},
		{"nats://s3cr3t-token@127.0.0.1:4222", "nats://[REDACTED]@127.0.0.1:4222"},
		{"nats://a:b@n1:4222,nats://n2:4222, nats://c:d@n3:4222", "nats://[REDACTED]@n1:4222,nats://n2:4222, nats://[REDACTED]@n3:4222"},
		{"https://hooks.example.net/mailmon?token=abc123&team=ops", "https://hooks.example.net/mailmon?token=[REDACTED]&team=ops"},
		{"https://x.example/h?api_key=k&Signature=s&access_token=t#frag", "https://x.example/h?api_key=[REDACTED]&Signature=[REDACTED]&access_token=[REDACTED]#frag"},
		{"https://u:p@x.example/path@odd?password=p", "https://[REDACTED]@x.example/path@odd?password=[REDACTED]"},
		{"clickhouse://default:chpass@127.0.0.1:9000/mailmon", "clickhouse://[REDACTED]@127.0.0.1:9000/mailmon"},
		{"https://bl.internal.example.net/remove?ip={target}", "https://bl.internal.example.net/remove?ip={target}"},
		{"http://alertmanager.example.net:9093", "http://alertmanager.example.net:9093"},
		{"not a url", "not a url"},
		{"nats://us er:p%zz@host", "[REDACTED]"},
	} {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// check-config prints through Print: credentials in any URL-valued key
// are gone from its output, plain URLs stay as they are.
func TestPrintRedactsCredentialsInURLs(t *testing.T) {
	type route struct {
		URL string `yaml:"url"`
	}
	cfg := struct {
		NATS struct {
			URL string `yaml:"url"`
		} `yaml:"nats"`
		Routes []route `yaml:"routes"`
		Plain  string  `yaml:"plain"`
	}{}
	cfg.NATS.URL = "nats://mailmon:nats-pa55@n1:4222,nats://mailmon:nats-pa55@n2:4222"
	cfg.Routes = []route{{URL: "https://hook-user:hook-pa55@hooks.example.net/x?token=tok-123"}}
	cfg.Plain = "https://example.net/unsubscribe"
	var out bytes.Buffer
	if err := Print(&out, cfg); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"nats-pa55", "hook-pa55", "tok-123", "hook-user"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("printed config shows %q:\n%s", secret, out.String())
		}
	}
	for _, kept := range []string{"@n1:4222", "@n2:4222", "hooks.example.net/x?token=[REDACTED]", "https://example.net/unsubscribe"} {
		if !strings.Contains(out.String(), kept) {
			t.Errorf("printed config lacks %q:\n%s", kept, out.String())
		}
	}
}

// Whatever the text, redaction never panics, and a URL's password never
// survives it.
func FuzzRedactURLs(f *testing.F) {
	for _, s := range []string{"nats://u:p@h:4222", "https://h/x?token=t", "a,b://c@d,e", "nats://%zz@h", "://@", "x://y?z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := RedactURLs(s)
		if strings.Contains(s, ",") {
			return
		}
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.User == nil {
			return
		}
		if p, ok := u.User.Password(); ok && len(p) >= 4 && !strings.Contains(redacted, p) {
			// The password may legitimately appear elsewhere (in the
			// host or path); only its place in the user info matters.
			if strings.Count(out, p) > strings.Count(s, p)-1 {
				t.Fatalf("RedactURLs(%q) = %q keeps the password", s, out)
			}
		}
	})
}
