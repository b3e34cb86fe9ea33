package mtalogtailer

import (
	"github.com/mailmon/mailmon/services/internal/provider"
)

// providers resolves the mailbox provider of a recipient.
type providers struct {
	domains    map[string]string
	mxSuffixes map[string]string
}

func newProviders(cfg ProviderConfig) *providers {
	p := &providers{domains: map[string]string{}, mxSuffixes: map[string]string{}}
	if cfg.Builtin {
		p.domains, p.mxSuffixes = provider.Domains(), provider.MXSuffixes()
	}
	for d, v := range cfg.Domains {
		p.domains[provider.Normalize(d)] = v
	}
	for d, v := range cfg.MXSuffixes {
		p.mxSuffixes[provider.Normalize(d)] = v
	}
	return p
}

// lookup returns the provider of the recipient domain, or else of the relay
// host name; "" when neither is in the table.
func (p *providers) lookup(recipientDomain, relayHost string) string {
	if v := provider.Match(p.domains, recipientDomain); v != "" {
		return v
	}
	return provider.Match(p.mxSuffixes, relayHost)
}
