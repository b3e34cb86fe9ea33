package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/miekg/dns"

	"github.com/mailmon/mailmon/services/peers"
)

func checkRbldnsd() error {
	if _, err := os.Stat(peers.RbldnsdBin); err != nil {
		return fmt.Errorf("%s is not installed (go tool task deps installs it)", peers.RbldnsdBin)
	}
	return nil
}

// rblZoneFile lists 127.0.0.3, the spammer's pool, and the self-test entry;
// never 127.0.0.1 (RFC 5782). Every listing answers 127.0.0.2 with a TXT
// that says the lab listed it on purpose ($ is the queried IP).
const rblZoneFile = `:127.0.0.2:Listed in the mailmon lab blocklist on purpose: $ sends the lab spammer's mail
` + selfTestListed + `
` + ipOut3 + `
`

// startRbldnsd serves rblZone from dir on addr (dns_sweeper.resolver) and
// returns once it answers the self-test entry. Its pid file lets the next
// lab stop one a killed lab left behind.
func startRbldnsd(ctx context.Context, dir, addr string) (*peers.Rbldnsd, error) {
	rev, err := dns.ReverseAddr(selfTestListed)
	if err != nil {
		return nil, err
	}
	return peers.StartRbldnsd(ctx, peers.RbldnsdConfig{
		Dir: dir, Addr: addr, Files: map[string]string{"rbl.zone": rblZoneFile},
		Zones:      []string{rblZone + ":ip4set:rbl.zone"},
		Ready:      rev[:len(rev)-len("in-addr.arpa.")] + rblZone,
		PIDFile:    filepath.Join(dir, "rbldnsd.pid"),
		CheckEvery: 5 * time.Second,
	})
}
