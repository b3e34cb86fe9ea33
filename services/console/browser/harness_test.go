package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mailmon/mailmon/services/internal/peertest"
)

// actionTimeout bounds one browser action (a navigation, a query, a
// screenshot); a page that takes longer is a failure, not a wait.
const actionTimeout = 20 * time.Second

// screenshotsEnv names a folder that keeps the screenshots of a run.
const screenshotsEnv = "MAILMON_SCREENSHOTS"

// browser is one headless chromium with one tab, started for one test;
// in(t) hands it to a subtest.
type browser struct {
	t    *testing.T
	ctx  context.Context // the tab
	pid  int             // chromium's own process
	dir  string          // its profile, made and removed by chromedp
	shot string          // where screenshots go
	seen *problems
}

// problems are the console errors, exceptions and failed loads the tab
// reported and no one has taken yet.
type problems struct {
	mu   sync.Mutex
	list []string
}

// in returns the same browser reporting to t (a subtest of the test that
// started it).
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

// chromiumPath finds Debian's chromium (or another build of it on PATH).
func chromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH (go tool task deps installs Debian's chromium)")
}

// newBrowser starts headless chromium for t and stops it in t.Cleanup,
// checking that its processes and profile are gone.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		peertest.Unavailable(t, "%v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 800),
		// Every name but loopback resolves to nothing: the console must
		// need no network, and a page that reaches for it logs a failed
		// load, which fails the test.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("proxy-server", "direct://"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
	)
	if os.Getuid() == 0 {
		// Chromium refuses to run its sandbox as root.
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)

	b := &browser{t: t, seen: &problems{}}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.seen.listen))
	// The first Run starts chromium; it must not carry a timeout, which
	// would stop the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		allocCancel()
		t.Fatalf("starting chromium %s: %v", path, err)
	}
	b.ctx = ctx
	b.pid = chromedp.FromContext(ctx).Browser.Process().Pid
	if b.dir = profileDir(b.pid); b.dir == "" {
		t.Errorf("chromium (pid %d) names no --user-data-dir: its profile and helpers cannot be checked at the end", b.pid)
	}
	b.shot = t.TempDir()
	t.Cleanup(func() {
		// Chromium's helpers (zygotes, renderers, GPU and network
		// services, crash handler) as they are before it closes.
		family := append([]int{b.pid}, descendants(b.pid)...)
		// Close chromium gracefully (Browser.close), then let the allocator
		// wait for the process and remove the profile.
		closeCtx, closeCancel := context.WithTimeout(ctx, 10*time.Second)
		if err := chromedp.Cancel(closeCtx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("closing chromium: %v", err)
		}
		closeCancel()
		cancel()
		allocCancel()
		if left := processesUsing(b.dir); len(left) > 0 {
			t.Errorf("chromium processes %v still run after the browser closed", left)
		}
		for _, pid := range family {
			if alive(pid) {
				t.Errorf("chromium's process %d %q still runs after the browser closed", pid, cmdline(pid))
			}
		}
		if b.dir != "" {
			if _, err := os.Stat(b.dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("chromium profile %s still exists after the browser closed (%v)", b.dir, err)
			}
		}
	})
	return b
}

// listen runs on the tab's reader goroutine for every event: it keeps what
// a page must never produce.
func (s *problems) listen(ev any) {
	var p string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		p = "exception: " + d.Text
		if d.Exception != nil {
			p += " " + firstLine(d.Exception.Description)
		}
		p += fmt.Sprintf(" at %s:%d", d.URL, d.LineNumber)
	case *runtime.EventConsoleAPICalled:
		if e.Type != runtime.ConsoleAPICalledTypeError && e.Type != runtime.ConsoleAPICalledTypeAssert && e.Type != runtime.ConsoleAPICalledTypeWarning {
			return
		}
		var args []string
		for _, a := range e.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		p = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " "))
	case *log.EventEntryAdded:
		if e.Entry.Level != log.EntryLevelError && e.Entry.Level != log.EntryLevelWarning {
			return
		}
		// Chromium asks for /favicon.ico on its own, after the page has
		// loaded and sometimes after the next navigation: not the page's
		// doing, and a failure that would land on whichever page is open.
		if strings.HasSuffix(e.Entry.URL, "/favicon.ico") {
			return
		}
		p = fmt.Sprintf("browser log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL)
	default:
		return
	}
	s.mu.Lock()
	s.list = append(s.list, p)
	s.mu.Unlock()
}

// takeProblems returns the console errors, exceptions and failed loads
// since the last call. A round trip to the page first makes sure every
// event the page sent before it has been seen.
func (b *browser) takeProblems() []string {
	b.t.Helper()
	if _, err := b.eval("1"); err != nil {
		b.t.Fatalf("flushing the page's events: %v", err)
	}
	b.seen.mu.Lock()
	defer b.seen.mu.Unlock()
	p := b.seen.list
	b.seen.list = nil
	return p
}

// open loads url and waits for its load event, then fails the test on any
// console error, exception or failed load the page produced.
func (b *browser) open(url string) {
	b.t.Helper()
	b.navigate(url)
	for _, p := range b.takeProblems() {
		b.t.Errorf("%s: %s", url, p)
	}
}

// navigate loads url, waits for its load event and fails the test unless
// it answered 200.
func (b *browser) navigate(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		b.t.Fatalf("opening %s: %v", url, err)
	}
	if resp.Status != 200 {
		b.t.Errorf("%s answered %d %s", url, resp.Status, resp.StatusText)
	}
}

// follow runs the actions (a click on a link, keys typed into a form and
// its submission), waits for the page they navigate to to load, fails the
// test on anything but 200 or on any problem of the new page, and returns
// its URL.
func (b *browser) follow(actions ...chromedp.Action[chromedp.Void]) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.t.Fatalf("following a link or form: %v", err)
	}
	if resp.Status != 200 {
		b.t.Errorf("%s answered %d %s", resp.URL, resp.Status, resp.StatusText)
	}
	for _, p := range b.takeProblems() {
		b.t.Errorf("%s: %s", resp.URL, p)
	}
	return resp.URL
}

// eval runs a JavaScript expression in the page and returns its JSON value.
func (b *browser) eval(expr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	return v, err
}

// texts returns the text of every element matching the CSS selector as
// the page shows it (innerText, runs of white space made one space), in
// document order.
func (b *browser) texts(selector string) []string {
	b.t.Helper()
	return b.strings(fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.innerText.replace(/\s+/g, " ").trim())`, strconv.Quote(selector)))
}

// attrs returns the attribute of every element matching the CSS selector,
// in document order ("" where it is missing).
func (b *browser) attrs(selector, attr string) []string {
	b.t.Helper()
	return b.strings(fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.getAttribute(%s) || "")`, strconv.Quote(selector), strconv.Quote(attr)))
}

// text returns the text of the one element matching the CSS selector, and
// fails the test when there is not exactly one.
func (b *browser) text(selector string) string {
	b.t.Helper()
	got := b.texts(selector)
	if len(got) != 1 {
		b.t.Fatalf("%q matches %d elements (%q), want 1", selector, len(got), got)
	}
	return got[0]
}

// table returns the text of every cell of every body row of the tables
// matching the CSS selector, row by row; a row of headings only (a table
// without a thead has its headings in the body) is left out.
func (b *browser) table(selector string) [][]string {
	b.t.Helper()
	expr := fmt.Sprintf(`Array.from(document.querySelectorAll(%s), tr => Array.from(tr.cells)).
		filter(cells => cells.some(c => c.tagName !== "TH")).
		map(cells => cells.map(c => c.innerText.replace(/\s+/g, " ").trim()))`, strconv.Quote(selector+" tbody tr"))
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// count returns how many elements match the CSS selector.
func (b *browser) count(selector string) int {
	b.t.Helper()
	return len(b.attrs(selector, "class"))
}

func (b *browser) strings(expr string) []string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// screenshot saves a full-page PNG of the tab as name.png in the test's
// temporary folder and, when MAILMON_SCREENSHOTS is set, in that folder;
// it fails the test on an image of one colour (a page that drew nothing).
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	data, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		b.t.Fatalf("screenshot %s is no PNG: %v", name, err)
	}
	if plain(img) {
		b.t.Errorf("screenshot %s (%v) is a single colour: the page drew nothing", name, img.Bounds().Size())
	}
	path := filepath.Join(b.shot, name+".png")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if dir := os.Getenv(screenshotsEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), data, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	return path
}

// plain reports whether every pixel of img has the same colour.
func plain(img image.Image) bool {
	r := img.Bounds()
	r0, g0, b0, a0 := img.At(r.Min.X, r.Min.Y).RGBA()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if r1, g1, b1, a1 := img.At(x, y).RGBA(); r1 != r0 || g1 != g0 || b1 != b0 || a1 != a0 {
				return false
			}
		}
	}
	return true
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// profileDir reads chromium's --user-data-dir from its command line.
func profileDir(pid int) string {
	for _, arg := range cmdline(pid) {
		if dir, ok := strings.CutPrefix(arg, "--user-data-dir="); ok {
			return dir
		}
	}
	return ""
}

func cmdline(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
}

// processesUsing lists the live processes whose command line names the
// chromium profile dir (chromium's helpers, renderers and crash handler
// all carry it).
func processesUsing(dir string) []int {
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := "--user-data-dir=" + dir
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		for _, arg := range cmdline(pid) {
			if arg == want {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// descendants lists the live processes under pid: its children, theirs,
// and so on.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parent(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// parent reads the parent pid of pid from /proc/pid/stat.
func parent(pid int) (int, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(fields[1])
	return pp, err == nil
}

// alive reports whether pid runs; a zombie waiting for its parent to reap
// it has ended.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
