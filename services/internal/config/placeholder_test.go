package config

import (
	"slices"
	"testing"
)

func TestPlaceholderSecrets(t *testing.T) {
	type route struct {
		Name     string `yaml:"name"`
		Password Secret `yaml:"password"`
	}
	type section struct {
		Token Secret `yaml:"token"`
	}
	cfg := struct {
		NATS struct {
			Password Secret             `yaml:"password"`
			Users    map[string]section `yaml:"users"`
		} `yaml:"nats"`
		Routes  []route  `yaml:"routes"`
		Inline  section  `yaml:",inline"`
		Pointer *section `yaml:"pointer"`
		Plain   string   `yaml:"plain"`
	}{}
	cfg.NATS.Password = "example-only-nats-password"
	cfg.NATS.Users = map[string]section{"b": {Token: "real"}, "a": {Token: "example-only-a"}}
	cfg.Routes = []route{{Name: "x", Password: "real-one"}, {Name: "y", Password: "example-only-y"}}
	cfg.Inline.Token = "demo-key-for-local-runs-only-0123456789"
	cfg.Pointer = &section{Token: "example-only-p"}
	cfg.Plain = "example-only-not-a-secret"

	got := PlaceholderSecrets(&cfg)
	want := []string{"nats.password", "nats.users.a.token", "pointer.token", "routes[1].password", "token"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("PlaceholderSecrets = %v, want %v", got, want)
	}
	if Secret("my-example-only-password").IsPlaceholder() {
		t.Error("a secret merely containing the prefix counts as a placeholder")
	}
}
