// Package provider names the big mailbox providers by the domains their
// users' addresses use and by the host names of the MX servers they run.
// Every worker that groups by provider (the MTA log tailer for deliveries,
// the FBL ingester for complaints and bounces, the policy service for
// customer × provider decisions) uses these names, so deliveries,
// complaints and decisions about one provider meet under one name.
//
// The tables are facts about who hosts which domain; a name matches its
// subdomains too ("mail.ru" covers "x.mail.ru" but not "gmail.ru").
package provider

import (
	"maps"
	"strings"
)

// domains are the mailbox domains of the big providers. A domain
// also matches its subdomains (e.g. "mail.ru" covers "x.mail.ru" but not
// "gmail.ru").
var domains = map[string]string{
	// Google
	"gmail.com": "gmail", "googlemail.com": "gmail",
	// Microsoft consumer mail
	"outlook.com": "outlook", "hotmail.com": "outlook", "live.com": "outlook", "msn.com": "outlook",
	"hotmail.co.uk": "outlook", "hotmail.fr": "outlook", "hotmail.de": "outlook", "hotmail.it": "outlook",
	"hotmail.es": "outlook", "live.co.uk": "outlook", "live.fr": "outlook", "live.de": "outlook",
	"live.nl": "outlook", "live.it": "outlook", "outlook.fr": "outlook", "outlook.de": "outlook",
	"outlook.es": "outlook", "windowslive.com": "outlook", "passport.com": "outlook",
	// Yahoo and the domains it hosts
	"yahoo.com": "yahoo", "ymail.com": "yahoo", "rocketmail.com": "yahoo", "yahoo.co.uk": "yahoo",
	"yahoo.fr": "yahoo", "yahoo.de": "yahoo", "yahoo.it": "yahoo", "yahoo.es": "yahoo", "yahoo.ca": "yahoo",
	"yahoo.com.br": "yahoo", "yahoo.com.au": "yahoo", "yahoo.co.in": "yahoo", "yahoo.co.jp": "yahoo",
	"yahoo.com.mx": "yahoo", "yahoo.com.ar": "yahoo", "yahoo.in": "yahoo", "rogers.com": "yahoo",
	"sbcglobal.net": "att", "att.net": "att", "bellsouth.net": "att", "pacbell.net": "att",
	"flash.net": "att", "swbell.net": "att", "prodigy.net": "att",
	// AOL (Yahoo's MX, its own brand)
	"aol.com": "aol", "aim.com": "aol", "aol.co.uk": "aol", "aol.fr": "aol", "aol.de": "aol",
	"verizon.net": "aol", "cs.com": "aol",
	// Apple
	"icloud.com": "icloud", "me.com": "icloud", "mac.com": "icloud",
	// United Internet
	"gmx.de": "gmx", "gmx.net": "gmx", "gmx.com": "gmx", "gmx.at": "gmx", "gmx.ch": "gmx", "gmx.fr": "gmx",
	"gmx.co.uk": "gmx", "gmx.us": "gmx", "mail.com": "gmx", "web.de": "webde",
	// Russia
	"mail.ru": "mailru", "inbox.ru": "mailru", "list.ru": "mailru", "bk.ru": "mailru", "internet.ru": "mailru",
	"yandex.ru": "yandex", "yandex.com": "yandex", "ya.ru": "yandex", "yandex.by": "yandex",
	"yandex.kz": "yandex", "yandex.ua": "yandex", "yandex.com.tr": "yandex", "narod.ru": "yandex",
	"rambler.ru": "rambler",
	// US cable and ISPs
	"comcast.net": "comcast", "xfinity.com": "comcast",
	"cox.net": "cox", "charter.net": "charter", "spectrum.net": "charter", "roadrunner.com": "charter",
	"twc.com": "charter", "rr.com": "charter", "frontier.com": "frontier", "centurylink.net": "centurylink",
	"earthlink.net": "earthlink", "optonline.net": "optimum", "windstream.net": "windstream",
	// Canada, UK, Europe
	"shaw.ca": "shaw", "videotron.ca": "videotron", "sympatico.ca": "bell",
	"btinternet.com": "bt", "btopenworld.com": "bt", "virginmedia.com": "virginmedia", "blueyonder.co.uk": "virginmedia",
	"sky.com": "sky", "talktalk.net": "talktalk",
	"orange.fr": "orange", "wanadoo.fr": "orange", "free.fr": "free", "sfr.fr": "sfr", "neuf.fr": "sfr",
	"laposte.net": "laposte", "bbox.fr": "bouygues",
	"t-online.de": "tonline", "freenet.de": "freenet", "arcor.de": "vodafone", "vodafone.de": "vodafone",
	"libero.it": "libero", "virgilio.it": "libero", "tiscali.it": "tiscali", "alice.it": "tim", "tim.it": "tim",
	"telefonica.net": "movistar", "terra.es": "terra",
	"ziggo.nl": "ziggo", "kpnmail.nl": "kpn", "home.nl": "ziggo", "planet.nl": "kpn",
	"telenet.be": "telenet", "skynet.be": "proximus",
	"bluewin.ch": "swisscom", "seznam.cz": "seznam", "centrum.cz": "centrum",
	"wp.pl": "wp", "o2.pl": "wp", "onet.pl": "onet", "op.pl": "onet", "interia.pl": "interia",
	// Privacy and independent providers
	"protonmail.com": "proton", "proton.me": "proton", "pm.me": "proton", "protonmail.ch": "proton",
	"tutanota.com": "tutanota", "tuta.io": "tutanota", "fastmail.com": "fastmail", "fastmail.fm": "fastmail",
	"zoho.com": "zoho", "zohomail.com": "zoho", "hey.com": "hey", "mailbox.org": "mailbox.org",
	"posteo.de": "posteo",
	// Asia, Oceania, Latin America
	"qq.com": "qq", "foxmail.com": "qq", "163.com": "netease", "126.com": "netease", "yeah.net": "netease",
	"sina.com": "sina", "sohu.com": "sohu", "naver.com": "naver", "daum.net": "daum", "hanmail.net": "daum",
	"rediffmail.com": "rediff", "bigpond.com": "telstra", "bigpond.net.au": "telstra", "optusnet.com.au": "optus",
	"xtra.co.nz": "xtra", "uol.com.br": "uol", "bol.com.br": "uol", "terra.com.br": "terra",
}

// mxSuffixes recognise the providers that host other domains, by the
// relay host name (the MX the message was handed to).
var mxSuffixes = map[string]string{
	"google.com":                  "gmail", // aspmx.l.google.com, smtp.google.com
	"googlemail.com":              "gmail",
	"mail.protection.outlook.com": "outlook", // Microsoft 365
	"outlook.com":                 "outlook", // *.olc.protection.outlook.com (consumer)
	"hotmail.com":                 "outlook",
	"yahoodns.net":                "yahoo", // also AOL's MX
	"icloud.com":                  "icloud",
	"gmx.net":                     "gmx",
	"web.de":                      "webde",
	"mail.ru":                     "mailru",
	"yandex.net":                  "yandex",
	"yandex.ru":                   "yandex",
	"comcast.net":                 "comcast",
	"cox.net":                     "cox",
	"charter.net":                 "charter",
	"protonmail.ch":               "proton",
	"messagingengine.com":         "fastmail",
	"zoho.com":                    "zoho",
	"zoho.eu":                     "zoho",
	"qq.com":                      "qq",
	"163.com":                     "netease",
	"orange.fr":                   "orange",
	"t-online.de":                 "tonline",
	"pphosted.com":                "proofpoint",
	"mimecast.com":                "mimecast",
	"barracudanetworks.com":       "barracuda",
	"iphmx.com":                   "cisco",
}

// Domains returns a copy of the built-in mailbox-domain table, for callers
// that merge their configured additions over it.
func Domains() map[string]string { return maps.Clone(domains) }

// MXSuffixes returns a copy of the built-in MX host-suffix table.
func MXSuffixes() map[string]string { return maps.Clone(mxSuffixes) }

// Normalize lower-cases a domain or host name and drops surrounding
// spaces, dots and a stray '>' (from an address in angle brackets).
func Normalize(name string) string {
	return strings.Trim(strings.ToLower(strings.TrimSpace(name)), ".>")
}

// Match finds name, or its closest parent domain, in table, and returns
// its value; "" when none is there. name is normalised first.
func Match(table map[string]string, name string) string {
	name = Normalize(name)
	for name != "" {
		if v, ok := table[name]; ok {
			return v
		}
		_, rest, ok := strings.Cut(name, ".")
		if !ok {
			return ""
		}
		name = rest
	}
	return ""
}
