package dnsbl_test

import (
	"fmt"
	"net/netip"

	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

func Example() {
	zone, _ := dnsbl.Default().Lookup("zen.spamhaus.org")
	zen, err := zone.Compile("") // or a Spamhaus DQS key
	if err != nil {
		panic(err)
	}
	target, _ := dnsbl.ParseTarget("192.0.2.99")
	q, _ := zen.QueryName(target)
	fmt.Println("ask:", q.Name)

	// The caller sends the A query and hands back the rcode and A records.
	listed := zen.Interpret(dnsbl.RcodeSuccess, []netip.Addr{netip.MustParseAddr("127.0.0.3")})
	fmt.Println(listed.Status, listed.Meanings[0])

	// Spamhaus refuses public resolvers with an error code: not a listing.
	refused := zen.Interpret(dnsbl.RcodeSuccess, []netip.Addr{netip.MustParseAddr("127.255.255.254")})
	fmt.Println(refused.Status, refused.Cause, refused.Meaning)

	// A resolver that rewrites NXDOMAIN to a web server's address.
	rewritten := zen.Interpret(dnsbl.RcodeSuccess, []netip.Addr{netip.MustParseAddr("198.51.100.80")})
	fmt.Println(rewritten.Status, rewritten.Cause)
	// Output:
	// ask: 99.2.0.192.zen.spamhaus.org.
	// listed SBL CSS: Spamhaus CSS data (snowshoe or low-reputation sending)
	// error error_code query via public/open resolver
	// error nxdomain_rewrite
}
