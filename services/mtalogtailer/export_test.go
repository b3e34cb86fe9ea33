package mtalogtailer

import "io"

// SimulateCrashes makes t's Run return at cancellation without confirming
// its publishes or storing checkpoints, as a killed process would.
func SimulateCrashes(t *Tailer) { t.crashOnCancel = true }

// SetStdin makes t's "-" file read r.
func SetStdin(t *Tailer, r io.Reader) { t.stdin = r }

// EventID exposes the id derivation.
var EventID = eventID

// Providers resolves with the given config.
func LookupProvider(cfg ProviderConfig, domain, relayHost string) string {
	return newProviders(cfg).lookup(domain, relayHost)
}

// LookupSourceIP resolves with the given config.
func LookupSourceIP(cfg SourceIPConfig, host, program, agent, tracked string) string {
	return sourceIPs{cfg: cfg}.lookup(host, program, agent, tracked)
}
