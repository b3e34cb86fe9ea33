package rawmail

import (
	"strings"
	"time"
)

// maxZoneComment bounds the comment text of a date kept to be read as a
// zone name.
const maxZoneComment = 64

// maxDateBytes is the longest text read as a date: RFC 5322's line limit
// (998 characters). No mail system writes a longer date, and a hostile one
// would only cost work and memory.
const maxDateBytes = 998

// ParseDate reads a date as written in mail headers and report fields and
// returns it in UTC. It accepts RFC 5322 dates (with or without the day of
// week, seconds or zone), obsolete and named zones (EST, PDT, JST, ...),
// zone comments ("-0500 (EST)"), two-digit years, asctime ("Thu Apr 29
// 16:51:04 2007"), ISO 8601 / RFC 3339 ("2016-01-19T14:32:40Z",
// "2016-01-19 14:32:40 +0100"), slashed dates ("2016/04/29", "4/29/2016")
// and AM/PM clocks. A date with no zone is taken as UTC. It reports false
// when no plausible date is found, or when s is longer than a header line
// may be.
func ParseDate(s string) (time.Time, bool) {
	if len(s) > maxDateBytes {
		return time.Time{}, false
	}
	var d dateParts
	d.year, d.month, d.day = -1, -1, -1
	comment := ""
	// Strip comments, keeping them for a zone name of last resort (only
	// their first maxZoneComment bytes: a longer one is no zone name).
	if strings.IndexByte(s, '(') >= 0 {
		var b, c strings.Builder
		depth := 0
		for _, r := range s {
			switch {
			case r == '(':
				depth++
				b.WriteByte(' ')
			case r == ')' && depth > 0:
				depth--
			case depth > 0:
				if c.Len() <= maxZoneComment {
					c.WriteRune(r)
				}
			default:
				b.WriteRune(r)
			}
		}
		s, comment = b.String(), c.String()
	}
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || r == '\r' || r == '\n'
	}) {
		if !d.token(tok) {
			return time.Time{}, false
		}
	}
	if !d.zoneSet && comment != "" {
		if off, ok := zoneNames[strings.ToUpper(strings.TrimSpace(comment))]; ok {
			d.offset, d.zoneSet = off, true
		}
	}
	return d.result()
}

type dateParts struct {
	year, month, day       int
	hour, min, sec, nsec   int
	timeSet, pm, am        bool
	offset                 int // seconds east of UTC
	zoneSet                bool
	pendingNums            []int // numbers whose role is not yet known
	sawMonthName, sawSlash bool
}

var monthNames = map[string]int{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
	"jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
	"january": 1, "february": 2, "march": 3, "april": 4, "june": 6, "july": 7,
	"august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
}

var dayNames = map[string]bool{
	"mon": true, "tue": true, "tues": true, "wed": true, "thu": true, "thur": true, "thurs": true,
	"fri": true, "sat": true, "sun": true, "monday": true, "tuesday": true, "wednesday": true,
	"thursday": true, "friday": true, "saturday": true, "sunday": true,
}

// zoneNames maps zone abbreviations seen in mail to their offsets in
// seconds. Ambiguous ones take their most common reading in mail (CST is
// US Central, IST is India).
var zoneNames = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "UCT": 0,
	"EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600,
	"AKST": -9 * 3600, "AKDT": -8 * 3600, "HST": -10 * 3600, "AST": -4 * 3600, "ADT": -3 * 3600,
	"NST": -3*3600 - 1800, "NDT": -2*3600 - 1800,
	"BST": 3600, "IST": 5*3600 + 1800, "CET": 3600, "CEST": 2 * 3600, "MET": 3600, "MEST": 2 * 3600,
	"MEZ": 3600, "MESZ": 2 * 3600, "WEST": 3600, "EET": 2 * 3600, "EEST": 3 * 3600, "MSK": 3 * 3600,
	"MSD": 4 * 3600, "JST": 9 * 3600, "KST": 9 * 3600, "HKT": 8 * 3600, "SGT": 8 * 3600,
	"AWST": 8 * 3600, "ACST": 9*3600 + 1800, "ACDT": 10*3600 + 1800, "AEST": 10 * 3600, "AEDT": 11 * 3600,
	"NZST": 12 * 3600, "NZDT": 13 * 3600, "BRT": -3 * 3600, "ART": -3 * 3600, "CLT": -4 * 3600,
	"PHT": 8 * 3600, "WIB": 7 * 3600, "ICT": 7 * 3600,
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && i < 9; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// token consumes one token; false means the input is not a date.
func (d *dateParts) token(tok string) bool {
	tok = strings.Trim(tok, ".;")
	if tok == "" {
		return true
	}
	low := strings.ToLower(tok)
	if dayNames[low] {
		return true
	}
	if m, ok := monthNames[low]; ok {
		d.month, d.sawMonthName = m, true
		return true
	}
	// "29-Apr-2016" and "2016-04-29" and ISO "2016-04-29T10:00:00Z".
	if t, rest, ok := strings.Cut(tok, "T"); ok && strings.Count(t, "-") == 2 && isDigits(t[:1]) {
		if !d.token(t) {
			return false
		}
		return d.clock(rest)
	}
	if strings.Count(tok, "-") == 2 && !strings.HasPrefix(tok, "-") {
		return d.triple(strings.Split(tok, "-"))
	}
	if strings.Count(tok, "/") == 2 {
		d.sawSlash = true
		return d.triple(strings.Split(tok, "/"))
	}
	if strings.Contains(tok, ":") && isDigits(tok[:1]) {
		return d.clock(tok)
	}
	switch low {
	case "am", "a.m":
		d.am = true
		return true
	case "pm", "p.m":
		d.pm = true
		return true
	}
	if tok[0] == '+' || tok[0] == '-' {
		return d.offsetTok(tok[1:], tok[0] == '-')
	}
	up := strings.ToUpper(tok)
	if off, ok := zoneNames[up]; ok {
		if !d.zoneSet {
			d.offset, d.zoneSet = off, true
		}
		return true
	}
	for _, pfx := range []string{"GMT", "UTC", "UT"} {
		if strings.HasPrefix(up, pfx) && len(up) > len(pfx) && (up[len(pfx)] == '+' || up[len(pfx)] == '-') {
			return d.offsetTok(up[len(pfx)+1:], up[len(pfx)] == '-')
		}
	}
	if isDigits(tok) {
		return d.number(tok)
	}
	// "29Apr2016"-style or other words: a word we do not know is
	// tolerated only when it is short zone-like text.
	if len(tok) <= 5 && isAlpha(tok) {
		return true
	}
	return false
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func (d *dateParts) triple(f []string) bool {
	if len(f) != 3 {
		return false
	}
	a, b, c := f[0], f[1], f[2]
	if m, ok := monthNames[strings.ToLower(b)]; ok && isDigits(a) && isDigits(c) {
		d.day, d.month = atoi(a), m
		return d.setYear(c)
	}
	if !isDigits(a) || !isDigits(b) || !isDigits(c) {
		return false
	}
	switch {
	case len(a) == 4: // y-m-d
		d.month, d.day = atoi(b), atoi(c)
		return d.setYear(a)
	case atoi(a) > 12: // d/m/y
		d.day, d.month = atoi(a), atoi(b)
		return d.setYear(c)
	case atoi(b) > 12 || d.sawSlash: // m/d/y
		d.month, d.day = atoi(a), atoi(b)
		return d.setYear(c)
	default: // d-m-y
		d.day, d.month = atoi(a), atoi(b)
		return d.setYear(c)
	}
}

func (d *dateParts) setYear(s string) bool {
	if !isDigits(s) {
		return false
	}
	y := atoi(s)
	switch len(s) {
	case 2:
		// RFC 5322 section 4.3: 00-49 are 2000-2049, 50-99 are 1950-1999.
		if y < 50 {
			y += 2000
		} else {
			y += 1900
		}
	case 3:
		y += 1900
	case 4:
	default:
		return false
	}
	if y < 1900 || y > 2199 {
		return false // not a mail date
	}
	d.year = y
	return true
}

func (d *dateParts) number(tok string) bool {
	n := atoi(tok)
	switch {
	case len(tok) == 4 && d.year < 0 && n >= 1900 && n < 2200:
		d.year = n
	case len(tok) == 4 && d.timeSet && !d.zoneSet:
		// "... 12:00:00 0900": an offset without its sign.
		return d.offsetTok(tok, false)
	case d.day < 0 && n >= 1 && n <= 31 && len(tok) <= 2:
		d.day = n
	case d.year < 0 && (len(tok) == 2 || len(tok) == 3):
		return d.setYear(tok)
	default:
		return false
	}
	return true
}

func (d *dateParts) clock(tok string) bool {
	// Split off a zone glued to the clock: "14:32:40Z", "14:32:40+09:00".
	zone := ""
	if i := strings.IndexAny(tok, "+-Zz"); i > 0 {
		tok, zone = tok[:i], tok[i:]
	}
	hms := strings.Split(tok, ":")
	if len(hms) < 2 || len(hms) > 3 {
		return false
	}
	frac := ""
	if len(hms) == 3 {
		if s, f, ok := strings.Cut(hms[2], "."); ok {
			hms[2], frac = s, f
		} else if s, f, ok := strings.Cut(hms[2], ","); ok {
			hms[2], frac = s, f
		}
	}
	for _, x := range hms {
		if !isDigits(x) || len(x) > 2 {
			return false
		}
	}
	d.hour, d.min = atoi(hms[0]), atoi(hms[1])
	if len(hms) == 3 {
		d.sec = atoi(hms[2])
	}
	if frac != "" && isDigits(frac) {
		for len(frac) < 9 {
			frac += "0"
		}
		d.nsec = atoi(frac[:9])
	}
	d.timeSet = true
	if zone != "" {
		if zone == "Z" || zone == "z" {
			d.offset, d.zoneSet = 0, true
			return true
		}
		return d.offsetTok(zone[1:], zone[0] == '-')
	}
	return true
}

// offsetTok reads "0900", "09:00", "9", "09" as a zone offset.
func (d *dateParts) offsetTok(s string, neg bool) bool {
	s = strings.ReplaceAll(s, ":", "")
	if !isDigits(s) {
		return false
	}
	var h, m int
	switch len(s) {
	case 1, 2:
		h = atoi(s)
	case 3:
		h, m = atoi(s[:1]), atoi(s[1:])
	case 4:
		h, m = atoi(s[:2]), atoi(s[2:])
	default:
		return false
	}
	if h > 14 || m > 59 {
		return false
	}
	if d.zoneSet {
		return true // the first zone wins ("+0000 GMT+09")
	}
	off := h*3600 + m*60
	if neg {
		off = -off
	}
	d.offset, d.zoneSet = off, true
	return true
}

func (d *dateParts) result() (time.Time, bool) {
	if d.year < 0 || d.month < 1 || d.month > 12 || d.day < 1 {
		return time.Time{}, false
	}
	if d.day > daysIn(d.month, d.year) {
		return time.Time{}, false
	}
	h := d.hour
	if d.pm && h < 12 {
		h += 12
	} else if d.am && h == 12 {
		h = 0
	}
	if h > 24 || d.min > 59 || d.sec > 60 {
		return time.Time{}, false
	}
	if d.sec == 60 {
		d.sec = 59 // leap second
	}
	t := time.Date(d.year, time.Month(d.month), d.day, h, d.min, d.sec, d.nsec, time.FixedZone("", d.offset))
	return t.UTC(), true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
