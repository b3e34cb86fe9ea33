package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const secretValue = "hunter2-never-print-me"

type holder struct {
	User     string
	Password Secret
	Nested   struct{ Token Secret }
	Ptr      *Secret
	List     []Secret
	ByName   map[string]Secret
}

func newHolder() holder {
	s := Secret(secretValue)
	h := holder{User: "mailmon", Password: s, Ptr: &s, List: []Secret{s}, ByName: map[string]Secret{"imap": s}}
	h.Nested.Token = s
	return h
}

func TestSecretNeverPrints(t *testing.T) {
	h := newHolder()
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%-12v"} {
		outputs["fmt "+verb+" struct"] = fmt.Sprintf(verb, h)
		outputs["fmt "+verb+" value"] = fmt.Sprintf(verb, h.Password)
		outputs["fmt "+verb+" pointer"] = fmt.Sprintf(verb, h.Ptr)
	}
	outputs["Sprint"] = fmt.Sprint(h, h.Password)
	outputs["Sprintln"] = fmt.Sprintln(h, h.Password)
	outputs["String"] = h.Password.String()
	outputs["GoString"] = h.Password.GoString()
	outputs["error wrap"] = fmt.Errorf("login as %s with %v failed", h.User, h.Password).Error()

	for name, handler := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		logger := slog.New(handler(&buf))
		logger.Info("connect", "password", h.Password, "config", h, "ptr", h.Ptr,
			slog.Any("any", h.Password), slog.Group("g", "token", h.Nested.Token))
		outputs[name] = buf.String()
	}

	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(js)
	ym, err := yaml.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs["yaml"] = string(ym)
	var printed bytes.Buffer
	if err := Print(&printed, h); err != nil {
		t.Fatal(err)
	}
	outputs["Print"] = printed.String()

	for name, out := range outputs {
		if strings.Contains(out, secretValue) || strings.Contains(out, "hunter2") ||
			strings.Contains(out, fmt.Sprintf("%x", secretValue)[:12]) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s does not show %s: %s", name, redacted, out)
		}
	}
}

func TestSecretEmptyStaysVisible(t *testing.T) {
	var empty Secret
	tests := []struct{ name, got, want string }{
		{"%v", fmt.Sprintf("%v", empty), ""},
		{"%q", fmt.Sprintf("%q", empty), `""`},
		{"%#v", fmt.Sprintf("%#v", empty), `""`},
		{"String", empty.String(), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s of an empty secret = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	js, _ := json.Marshal(struct{ P Secret }{})
	if string(js) != `{"P":""}` {
		t.Errorf("json of an empty secret: %s", js)
	}
}

func TestSecretReveal(t *testing.T) {
	if got := Secret(secretValue).Reveal(); got != secretValue {
		t.Errorf("Reveal() = %q", got)
	}
	var s Secret
	if err := json.Unmarshal([]byte(`"abc"`), &s); err != nil || s.Reveal() != "abc" {
		t.Errorf("json into a Secret: %q, %v", s.Reveal(), err)
	}
}
