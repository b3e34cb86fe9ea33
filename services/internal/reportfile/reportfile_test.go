package reportfile

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"
)

// Small hand-written documents.
const (
	xmlReport = `<?xml version="1.0" encoding="UTF-8"?>
<feedback><report_metadata><org_name>receiver.example</org_name><report_id>42</report_id>
<date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
<policy_published><domain>sender.example</domain><p>none</p></policy_published>
<record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
<identifiers><header_from>sender.example</header_from></identifiers></record></feedback>
`
	xmlReportNS = `<dmarc:feedback xmlns:dmarc="urn:ietf:params:xml:ns:dmarc-2.0"><dmarc:report_metadata/></dmarc:feedback>`
	jsonReport  = `{"organization-name":"sender.example","report-id":"r1","date-range":{"start-datetime":"2025-01-01T00:00:00Z","end-datetime":"2025-01-01T23:59:59Z"},
"policies":[{"policy":{"policy-type":"sts","policy-domain":"rcpt.example"},"summary":{"total-successful-session-count":5,"total-failure-session-count":1}}]}`
)

func gz(t testing.TB, data string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zipOf builds a zip archive of name/content pairs.
func zipOf(t testing.TB, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		w, err := zw.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mailWith is a message with a text part and one attachment, base64
// encoded.
func mailWith(contentType, name string, body []byte) []byte {
	var b strings.Builder
	b.WriteString("From: noreply-dmarc@receiver.example\r\nTo: rua@sender.example\r\n" +
		"Subject: Report Domain: sender.example Submitter: receiver.example Report-ID: <42>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\n" +
		"--BOUND\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is an aggregate report from receiver.example.\r\n" +
		"--BOUND\r\nContent-Type: " + contentType)
	if name != "" {
		b.WriteString("; name=\"" + name + "\"\r\nContent-Disposition: attachment; filename=\"" + name + "\"")
	}
	b.WriteString("\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(body)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--BOUND--\r\n")
	return []byte(b.String())
}

func TestExtract(t *testing.T) {
	const dmarcName = "receiver.example!sender.example!1700000000!1700086399.xml"
	withTrailer := append(gz(t, xmlReport), "\x00\x00garbage after the member"...)
	tests := []struct {
		name  string
		raw   []byte
		want  []Document
		looks bool // LooksLikeReport's answer
	}{
		{"bare XML", []byte(xmlReport), []Document{{"", FormatDMARC, []byte(xmlReport)}}, false},
		{"bare XML, namespaced with a prefix", []byte(xmlReportNS), []Document{{"", FormatDMARC, []byte(xmlReportNS)}}, false},
		{"bare JSON", []byte(jsonReport), []Document{{"", FormatTLSRPT, []byte(jsonReport)}}, false},
		{"gzip", gz(t, xmlReport), []Document{{"", FormatDMARC, []byte(xmlReport)}}, false},
		{"gzip with trailing bytes", withTrailer, []Document{{"", FormatDMARC, []byte(xmlReport)}}, false},
		{"zip", zipOf(t, dmarcName, xmlReport), []Document{{dmarcName, FormatDMARC, []byte(xmlReport)}}, false},
		{"zip with a directory and a readme", zipOf(t, "dir/", "", "README.txt", "not a report", "dir/"+dmarcName, xmlReport),
			[]Document{{dmarcName, FormatDMARC, []byte(xmlReport)}}, false},
		{"gzip inside zip", zipOf(t, dmarcName+".gz", string(gz(t, xmlReport))), []Document{{dmarcName, FormatDMARC, []byte(xmlReport)}}, false},
		{"mail, application/gzip", mailWith("application/gzip", dmarcName+".gz", gz(t, xmlReport)),
			[]Document{{dmarcName, FormatDMARC, []byte(xmlReport)}}, true},
		{"mail, application/x-zip-compressed", mailWith("application/x-zip-compressed", "r.zip", zipOf(t, dmarcName, xmlReport)),
			[]Document{{dmarcName, FormatDMARC, []byte(xmlReport)}}, true},
		{"mail, text/xml", mailWith("text/xml", "", []byte(xmlReport)), []Document{{"", FormatDMARC, []byte(xmlReport)}}, true},
		{"mail, octet-stream named .xml.gz", mailWith("application/octet-stream", dmarcName+".gz", gz(t, xmlReport)),
			[]Document{{dmarcName, FormatDMARC, []byte(xmlReport)}}, true},
		{"mail, text/plain with the conventional name", mailWith("text/plain", dmarcName+".gz", gz(t, xmlReport)),
			[]Document{{dmarcName, FormatDMARC, []byte(xmlReport)}}, true},
		{"mail, octet-stream sniffed", mailWith("application/octet-stream", "report.bin", gz(t, xmlReport)),
			[]Document{{"report.bin", FormatDMARC, []byte(xmlReport)}}, false},
		{"mail, application/tlsrpt+gzip", mailWith("application/tlsrpt+gzip", "sender.example!rcpt.example!1!2.json.gz", gz(t, jsonReport)),
			[]Document{{"sender.example!rcpt.example!1!2.json", FormatTLSRPT, []byte(jsonReport)}}, true},
		{"mail, application/tlsrpt+json", mailWith("application/tlsrpt+json", "", []byte(jsonReport)),
			[]Document{{"", FormatTLSRPT, []byte(jsonReport)}}, true},
		{"mail with the XML inline", []byte("From: a@receiver.example\nSubject: report\n\n" + xmlReport),
			[]Document{{"", FormatDMARC, []byte(xmlReport)}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Extract(tt.raw, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != len(tt.want) {
				t.Fatalf("%d documents, want %d", len(docs), len(tt.want))
			}
			for i, d := range docs {
				w := tt.want[i]
				if d.Name != w.Name || d.Format != w.Format || !bytes.Equal(bytes.TrimRight(d.Data, "\r\n"), bytes.TrimRight(w.Data, "\r\n")) {
					t.Errorf("document %d = %q %q %q, want %q %q %q", i, d.Name, d.Format, d.Data, w.Name, w.Format, w.Data)
				}
			}
			if got := LooksLikeReport(tt.raw); got != tt.looks {
				t.Errorf("LooksLikeReport = %v, want %v", got, tt.looks)
			}
		})
	}
}

func TestExtractRefuses(t *testing.T) {
	small := Limits{MaxInput: 1 << 20, MaxDocument: 4 << 10, MaxTotal: 6 << 10, MaxRatio: 10, MaxDocuments: 3}
	big := strings.Repeat(" ", 5<<10) + xmlReport
	tests := []struct {
		name string
		raw  []byte
		lim  Limits
		want error
	}{
		{"nothing", nil, DefaultLimits(), ErrNoReport},
		{"text", []byte("hello"), DefaultLimits(), ErrNoReport},
		{"other XML", []byte("<?xml version=\"1.0\"?><html/>"), DefaultLimits(), ErrNoReport},
		{"other JSON", []byte(`{"a": 1}`), DefaultLimits(), ErrNoReport},
		{"mail without a report", []byte("From: a@b.example\nSubject: hi\n\nhello\n"), DefaultLimits(), ErrNoReport},
		{"zip of no reports", zipOf(t, "a.txt", "x"), DefaultLimits(), ErrNoReport},
		{"input too large", []byte(xmlReport), Limits{MaxInput: 10}, ErrLimit},
		{"document too large", gz(t, big), Limits{MaxInput: 1 << 20, MaxDocument: 4 << 10, MaxTotal: 1 << 20, MaxRatio: 1 << 20, MaxDocuments: 3}, ErrLimit},
		{"total too large", zipOf(t, "a.xml", string(gz(t, xmlReport+strings.Repeat(" ", 3<<10))), "b.xml.gz", string(gz(t, xmlReport+strings.Repeat(" ", 3<<10)))),
			Limits{MaxInput: 1 << 20, MaxDocument: 4 << 10, MaxTotal: 6 << 10, MaxRatio: 1 << 20, MaxDocuments: 3}, ErrLimit},
		{"too many zip entries", zipOf(t, "1.xml", xmlReport, "2.xml", xmlReport, "3.xml", xmlReport, "4.xml", xmlReport), small, ErrLimit},
		{"zip in zip in zip", zipOf(t, "a.zip", string(zipOf(t, "b.zip", string(zipOf(t, "c.xml", xmlReport))))), DefaultLimits(), ErrLimit},
		{"gzip in zip in gzip", gz(t, string(zipOf(t, "b.xml.gz", string(gz(t, xmlReport))))), DefaultLimits(), ErrLimit},
		{"gzip in gzip in gzip", gz(t, string(gz(t, string(gz(t, xmlReport))))), DefaultLimits(), ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Extract(tt.raw, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if docs != nil {
				t.Errorf("documents with the error: %d", len(docs))
			}
		})
	}
}

// TestExtractManyDocuments: a mail with more report parts than
// MaxDocuments is refused.
func TestExtractManyDocuments(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@receiver.example\nContent-Type: multipart/mixed; boundary=B\n\n")
	for i := 0; i < 5; i++ {
		b.WriteString("--B\nContent-Type: text/xml\n\n" + xmlReport)
	}
	b.WriteString("--B--\n")
	lim := DefaultLimits()
	lim.MaxDocuments = 4
	if _, err := Extract([]byte(b.String()), lim); !errors.Is(err, ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit", err)
	}
	lim.MaxDocuments = 5
	if docs, err := Extract([]byte(b.String()), lim); err != nil || len(docs) != 5 {
		t.Fatalf("%d documents, %v; want 5", len(docs), err)
	}
}

// TestExtractRatio: a stream that inflates more than MaxRatio times its
// compressed size is refused once past RatioFloor, even within
// MaxDocument; below RatioFloor the ratio does not count.
func TestExtractRatio(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxRatio = 10
	padded := gz(t, xmlReport+strings.Repeat(" ", 2*RatioFloor))
	_, err := Extract(padded, lim)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "max_ratio") {
		t.Fatalf("err = %v, want ErrLimit for max_ratio", err)
	}
	small := gz(t, xmlReport+strings.Repeat(" ", RatioFloor/2))
	if docs, err := Extract(small, lim); err != nil || len(docs) != 1 {
		t.Fatalf("%d documents, %v; want the report", len(docs), err)
	}
}

// TestExtractBrokenGzip: a truncated gzip says why it could not be read.
func TestExtractBrokenGzip(t *testing.T) {
	g := gz(t, xmlReport)
	_, err := Extract(g[:len(g)/2], DefaultLimits())
	if err == nil || errors.Is(err, ErrLimit) || errors.Is(err, ErrNoReport) || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("err = %v, want the gzip error", err)
	}
}

const bombSize = 1 << 30

// zeroDeflate returns a raw deflate stream of n MiB of zeros without
// compressing them all: one MiB compressed and sync-flushed (so it ends
// on a byte boundary, not final), repeated n times, then an empty final
// block. Every back-reference in it points at zeros, so the copies decode
// one after the other.
func zeroDeflate(t testing.TB, mib int) []byte {
	t.Helper()
	var one bytes.Buffer
	w, err := flate.NewWriter(&one, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := bytes.Repeat(one.Bytes(), mib)
	return append(out, 0x03, 0x00) // a final, empty, fixed-Huffman block
}

// crcZeros is the CRC-32 of n zero bytes.
func crcZeros(n int64) uint32 {
	var c uint32
	zero := make([]byte, 1<<20)
	for ; n > 0; n -= int64(len(zero)) {
		c = crc32.Update(c, crc32.IEEETable, zero[:min(n, int64(len(zero)))])
	}
	return c
}

// gzipBomb is a valid gzip file of size bytes of zeros (a whole number
// of MiB); 1 GiB makes about 1 MiB.
func gzipBomb(t testing.TB, size int64) []byte {
	b := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	b = append(b, zeroDeflate(t, int(size>>20))...)
	b = binary.LittleEndian.AppendUint32(b, crcZeros(size))
	return binary.LittleEndian.AppendUint32(b, uint32(size&0xffffffff))
}

// zipBomb is a valid zip file holding one entry of 1 GiB of zeros.
func zipBomb(t testing.TB) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	raw := zeroDeflate(t, bombSize>>20)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "receiver.example!sender.example!1!2.xml", Method: zip.Deflate,
		CRC32: crcZeros(bombSize), CompressedSize64: uint64(len(raw)), UncompressedSize64: bombSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestBombs: a gzip and a zip of 1 GiB of zeros, bare and attached to a
// mail, are refused with ErrLimit, and reading them allocates a small
// fraction of what they inflate to (the bytes allocated in all, not just
// what is live afterwards, so the bound holds for the peak too).
func TestBombs(t *testing.T) {
	// The construction is sound: a smaller bomb built the same way is a
	// valid gzip file of exactly its size (checksum and length checked by
	// the standard library).
	const checked = 8 << 20
	zr, err := gzip.NewReader(bytes.NewReader(gzipBomb(t, checked)))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, zr); err != nil || n != checked {
		t.Fatalf("the gzip bomb inflates to %d bytes (%v), want %d", n, err, checked)
	}
	gb, zb := gzipBomb(t, bombSize), zipBomb(t)
	// The default limits, and smaller ones that make the other cases
	// quicker (under the race detector inflating is slow).
	def, small := DefaultLimits(), DefaultLimits()
	small.MaxDocument, small.MaxTotal = 8<<20, 12<<20
	tests := []struct {
		name string
		raw  []byte
		lim  Limits
	}{
		{"gzip", gb, def},
		{"zip", zb, def},
		{"gzip attached", mailWith("application/gzip", "r.xml.gz", gb), small},
		{"zip attached", mailWith("application/zip", "r.zip", zb), small},
		{"gzip in zip", zipOf(t, "r.xml.gz", string(gb)), small},
	}
	for _, tt := range tests {
		lim := tt.lim
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			docs, err := Extract(tt.raw, lim)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v, want ErrLimit", err)
			}
			if docs != nil {
				t.Fatal("documents returned with the error")
			}
			allocated := after.TotalAlloc - before.TotalAlloc
			heapGrowth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("%v; %d MiB allocated, heap grew %d MiB", err, allocated>>20, heapGrowth>>20)
			// Reading stops at MaxDocument (or the ratio bound below it);
			// a bytes.Buffer grows by doubling, so up to about 2x that, plus
			// the MIME decoding of the input.
			if limit := uint64(2*lim.MaxDocument) + 4*uint64(len(tt.raw)) + 8<<20; allocated > limit {
				t.Errorf("%d bytes allocated, more than %d", allocated, limit)
			}
			if allocated > bombSize/8 {
				t.Errorf("%d bytes allocated for a 1 GiB bomb", allocated)
			}
		})
	}
}
