package complaintevaluator

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// checkpointVersion numbers the checkpoint format. Bump it whenever the
// engine's state gains, loses or changes a field (checkpoint_test.go
// lists the fields it expects, so such a change fails there first): a
// checkpoint of another version is not used and the state is rebuilt from
// the streams.
const checkpointVersion = 1

// checkpoint is the engine's whole state at one point of every stream it
// reads: restored, then fed the messages after Streams, it is the state a
// full rebuild from the streams gives.
type checkpoint struct {
	Version int
	// ConfigHash is configHash of the configuration that built the state.
	ConfigHash            string
	Partition, Partitions int
	// TakenAt is when it was taken (unix ns).
	TakenAt int64
	// Streams are the positions read, by stream name.
	Streams []streamPos
	Engine  engineSnap
}

// streamPos is the last message of one stream the state holds.
type streamPos struct {
	Stream string
	// Seq is the stream sequence of the last message fed to the engine.
	Seq uint64
	// Created is the stream's creation time (unix ns): a stream deleted
	// and created again numbers its messages from 1 again.
	Created int64
}

// The snapshot types mirror the engine's state with exported fields, maps
// as slices sorted by key (so a snapshot is deterministic and two can be
// compared) and times as unix nanoseconds (0: the zero time).

type engineSnap struct {
	Subjects            []subjectSnap
	Complaint, Delivery idSetSnap
	Decisions, Ended    []keyTime
	LastGC              int64
	Stats               Stats
	AlertSignals        idSetSnap
	ReportsJudged       int64
	Conds               []conditionSnap
	Published           []publishedSnap
	Streaks             []streakSnap
	Listings            []listingSnap
	Spam                []placementsSnap
	Latency             []latencySnap
	Delisted            []delistingSnap
	StillRejected       []keyTime
	Reports             []reportAggSnap
}

type keyTime struct {
	Key string
	T   int64
}

type subjectSnap struct {
	Key      string
	Subject  enforcement.Subject
	Windows  []windowSnap
	Hits     []hitSnap
	Samples  []sampleSnap
	Since    int64
	Active   []byte // enforcement.Record.Marshal; nil: none
	Offences []int64
	Alerted  []levelSnap
}

type windowSnap struct {
	Length, Step int64
	Buckets      []bucketSnap
}

type bucketSnap struct {
	Epoch int64
	C     Counts
}

type hitSnap struct {
	Key    string
	Window windowSnap
}

type sampleSnap struct {
	ID string
	T  int64
}

type levelSnap struct {
	Key   string
	Level Level
}

type idSetSnap struct {
	Cur, Prev []uint64
	Rotated   int64
}

type conditionSnap struct {
	Key                         string
	Rule, Subject, DedupeKey    string
	Firing                      bool
	Severity                    string
	Members                     []string
	Summary                     string
	Evidence                    [][2]string
	EventIDs                    []string
	SourceIP, Provider, ProbeID string
}

type publishedSnap struct {
	Key                       string
	Status, Severity, Members string
}

type streakSnap struct {
	Key                         string
	Count                       int
	LastGood                    int64
	FailedSent                  []int64
	IDs                         []string
	Last                        [][2]string
	SourceIP, Provider, ProbeID string
}

type listingSnap struct {
	Target string
	Zones  []zoneSnap
}

type zoneSnap struct {
	Zone                 string
	List, DelistURL, TXT string
	Weight               float64
	AnswerCodes          []string
	EventID              string
}

type placementsSnap struct {
	Key                string
	Spam               []bool
	IDs                []string
	SourceIP, Provider string
}

type latencySnap struct {
	Key     string
	Samples []latencySampleSnap
}

type latencySampleSnap struct {
	At int64
	Ms int64
	ID string
}

type delistingSnap struct {
	Key        string
	At         int64
	Zone, List string
}

type reportAggSnap struct {
	Key                        string
	Rule, Subject, DedupeKey   string
	SourceIP, Reporter, Domain string
	Entries                    []reportEntrySnap
	Bad, All                   uint64
	PerDay                     []dayCount
	MinEnd                     int64
}

type reportEntrySnap struct {
	ID                              string
	End                             int64
	Day                             string
	Bad, All, Rejected, Quarantined uint64
	ReportID, Reporter              string
	Domain, HeaderFrom              string
	Kinds                           []string
}

type dayCount struct {
	Day string
	N   uint64
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func keyTimes(m map[string]time.Time) []keyTime {
	var out []keyTime
	for _, k := range sortedKeys(m) {
		out = append(out, keyTime{k, unixNano(m[k])})
	}
	return out
}

func keyTimeMap(s []keyTime) map[string]time.Time {
	m := make(map[string]time.Time, len(s))
	for _, kt := range s {
		m[kt.Key] = fromUnixNano(kt.T)
	}
	return m
}

func times(ts []time.Time) []int64 {
	var out []int64
	for _, t := range ts {
		out = append(out, unixNano(t))
	}
	return out
}

func timesFrom(ns []int64) []time.Time {
	var out []time.Time
	for _, n := range ns {
		out = append(out, fromUnixNano(n))
	}
	return out
}

func snapIDSet(s *idSet) idSetSnap {
	keys := func(m map[uint64]struct{}) []uint64 {
		if len(m) == 0 {
			return nil
		}
		return slices.Sorted(maps.Keys(m))
	}
	return idSetSnap{Cur: keys(s.cur), Prev: keys(s.prev), Rotated: unixNano(s.rotated)}
}

func restoreIDSet(ttl time.Duration, snap idSetSnap) *idSet {
	s := newIDSet(ttl)
	for _, k := range snap.Cur {
		s.cur[k] = struct{}{}
	}
	for _, k := range snap.Prev {
		s.prev[k] = struct{}{}
	}
	s.rotated = fromUnixNano(snap.Rotated)
	return s
}

func snapWindow(w *Window) windowSnap {
	s := windowSnap{Length: int64(w.Length), Step: w.step}
	for _, b := range w.buckets {
		s.Buckets = append(s.Buckets, bucketSnap{b.epoch, b.c})
	}
	return s
}

// restoreWindow fills a window made by the current configuration with the
// buckets of snap, which must have been counted at the same length and
// resolution (the configuration hash says so).
func restoreWindow(w *Window, snap windowSnap) error {
	if time.Duration(snap.Length) != w.Length || snap.Step != w.step {
		return fmt.Errorf("window of %s in steps of %s where the configuration has %s in steps of %s",
			time.Duration(snap.Length), time.Duration(snap.Step), w.Length, time.Duration(w.step))
	}
	for i, b := range snap.Buckets {
		if i > 0 && b.Epoch <= snap.Buckets[i-1].Epoch {
			return errors.New("window buckets out of order")
		}
		w.buckets = append(w.buckets, bucket{epoch: b.Epoch, c: b.C})
		w.total.add(b.C)
	}
	return nil
}

// snapshot copies the engine's state. The engine must not change while it
// runs (the worker holds its lock).
func (e *Engine) snapshot() engineSnap {
	s := engineSnap{
		Complaint:     snapIDSet(e.complaint),
		Delivery:      snapIDSet(e.delivery),
		Decisions:     keyTimes(e.decisions),
		Ended:         keyTimes(e.ended),
		LastGC:        unixNano(e.lastGC),
		Stats:         e.stats,
		AlertSignals:  snapIDSet(e.alerts.signals),
		ReportsJudged: unixNano(e.alerts.reportsJudged),
		StillRejected: keyTimes(e.alerts.stillRejected),
	}
	for _, k := range sortedKeys(e.subjects) {
		st := e.subjects[k]
		ss := subjectSnap{Key: k, Subject: st.s, Since: unixNano(st.since), Offences: times(st.offences)}
		for _, w := range st.windows {
			ss.Windows = append(ss.Windows, snapWindow(w))
		}
		for _, hk := range sortedKeys(st.hits) {
			ss.Hits = append(ss.Hits, hitSnap{hk, snapWindow(st.hits[hk])})
		}
		for _, sm := range st.samples {
			ss.Samples = append(ss.Samples, sampleSnap{sm.id, unixNano(sm.t)})
		}
		if st.active != nil {
			ss.Active = st.active.Marshal()
		}
		for _, ak := range sortedKeys(st.alerted) {
			ss.Alerted = append(ss.Alerted, levelSnap{ak, st.alerted[ak]})
		}
		s.Subjects = append(s.Subjects, ss)
	}
	a := &e.alerts
	for _, k := range sortedKeys(a.conds) {
		c := a.conds[k]
		s.Conds = append(s.Conds, conditionSnap{Key: k, Rule: c.rule, Subject: c.subject, DedupeKey: c.dedupeKey, Firing: c.firing,
			Severity: c.severity, Members: c.members, Summary: c.summary, Evidence: c.evidence, EventIDs: c.eventIDs,
			SourceIP: c.sourceIP, Provider: c.provider, ProbeID: c.probeID})
	}
	for _, k := range sortedKeys(a.published) {
		p := a.published[k]
		s.Published = append(s.Published, publishedSnap{k, p.status, p.severity, p.members})
	}
	for _, k := range sortedKeys(a.streaks) {
		st := a.streaks[k]
		s.Streaks = append(s.Streaks, streakSnap{Key: k, Count: st.count, LastGood: unixNano(st.lastGood), FailedSent: times(st.failedSent),
			IDs: st.ids, Last: st.last, SourceIP: st.sourceIP, Provider: st.provider, ProbeID: st.probeID})
	}
	for _, target := range sortedKeys(a.listings) {
		l := listingSnap{Target: target}
		zones := a.listings[target]
		for _, z := range sortedKeys(zones) {
			zl := zones[z]
			l.Zones = append(l.Zones, zoneSnap{z, zl.list, zl.delistURL, zl.txt, zl.weight, zl.answerCodes, zl.eventID})
		}
		s.Listings = append(s.Listings, l)
	}
	for _, k := range sortedKeys(a.spam) {
		p := a.spam[k]
		s.Spam = append(s.Spam, placementsSnap{k, p.spam, p.ids, p.sourceIP, p.provider})
	}
	for _, k := range sortedKeys(a.latency) {
		l := latencySnap{Key: k}
		for _, sm := range a.latency[k] {
			l.Samples = append(l.Samples, latencySampleSnap{unixNano(sm.at), sm.ms, sm.id})
		}
		s.Latency = append(s.Latency, l)
	}
	for _, k := range sortedKeys(a.delisted) {
		d := a.delisted[k]
		s.Delisted = append(s.Delisted, delistingSnap{k, unixNano(d.at), d.zone, d.list})
	}
	for _, k := range sortedKeys(a.reports) {
		g := a.reports[k]
		gs := reportAggSnap{Key: k, Rule: g.rule, Subject: g.subject, DedupeKey: g.key, SourceIP: g.sourceIP, Reporter: g.reporter,
			Domain: g.domain, Bad: g.bad, All: g.all, MinEnd: unixNano(g.minEnd)}
		for _, id := range sortedKeys(g.entries) {
			en := g.entries[id]
			gs.Entries = append(gs.Entries, reportEntrySnap{ID: id, End: unixNano(en.end), Day: en.day, Bad: en.bad, All: en.all,
				Rejected: en.rejected, Quarantined: en.quarantined, ReportID: en.reportID, Reporter: en.reporter, Domain: en.domain,
				HeaderFrom: en.headerFrom, Kinds: en.kinds})
		}
		for _, day := range sortedKeys(g.perDay) {
			gs.PerDay = append(gs.PerDay, dayCount{day, g.perDay[day]})
		}
		s.Reports = append(s.Reports, gs)
	}
	return s
}

// restoreEngine builds an engine of cfg holding the state of snap.
func restoreEngine(cfg Config, e *Engine, s engineSnap) error {
	r := NewEngine(cfg, e.src)
	r.complaint = restoreIDSet(cfg.longestWindow(), s.Complaint)
	r.delivery = restoreIDSet(cfg.DedupeWindow.Std(), s.Delivery)
	r.decisions = keyTimeMap(s.Decisions)
	r.ended = keyTimeMap(s.Ended)
	r.lastGC = fromUnixNano(s.LastGC)
	r.stats = s.Stats
	for _, ss := range s.Subjects {
		if !ss.Subject.Valid() || ss.Subject.String() != ss.Key || !r.Owns(ss.Subject) {
			return fmt.Errorf("subject %q is not one of this partition's", ss.Key)
		}
		st := r.state(ss.Subject)
		if len(ss.Windows) != len(st.windows) {
			return fmt.Errorf("subject %s: %d windows where the configuration has %d", ss.Key, len(ss.Windows), len(st.windows))
		}
		for i, w := range ss.Windows {
			if err := restoreWindow(st.windows[i], w); err != nil {
				return fmt.Errorf("subject %s: %w", ss.Key, err)
			}
		}
		for _, h := range ss.Hits {
			w := NewWindow(time.Duration(h.Window.Length), cfg.Resolution)
			if err := restoreWindow(w, h.Window); err != nil {
				return fmt.Errorf("subject %s: %s: %w", ss.Key, h.Key, err)
			}
			if st.hits == nil {
				st.hits = map[string]*Window{}
			}
			st.hits[h.Key] = w
		}
		for _, sm := range ss.Samples {
			st.samples = append(st.samples, sample{sm.ID, fromUnixNano(sm.T)})
		}
		st.since = fromUnixNano(ss.Since)
		if ss.Active != nil {
			rec, err := enforcement.Unmarshal(ss.Active)
			if err != nil {
				return fmt.Errorf("subject %s: decision in force: %w", ss.Key, err)
			}
			st.active = &rec
		}
		st.offences = timesFrom(ss.Offences)
		for _, l := range ss.Alerted {
			st.alerted[l.Key] = l.Level
		}
	}
	a := &r.alerts
	a.signals = restoreIDSet(cfg.DedupeWindow.Std(), s.AlertSignals)
	a.reportsJudged = fromUnixNano(s.ReportsJudged)
	a.stillRejected = keyTimeMap(s.StillRejected)
	for _, c := range s.Conds {
		a.conds[c.Key] = &condition{rule: c.Rule, subject: c.Subject, dedupeKey: c.DedupeKey, firing: c.Firing, severity: c.Severity,
			members: c.Members, summary: c.Summary, evidence: c.Evidence, eventIDs: c.EventIDs, sourceIP: c.SourceIP, provider: c.Provider, probeID: c.ProbeID}
	}
	for _, p := range s.Published {
		a.published[p.Key] = publishedAlert{p.Status, p.Severity, p.Members}
	}
	for _, st := range s.Streaks {
		if len(st.FailedSent) != len(st.IDs) {
			return fmt.Errorf("streak %s: %d send times for %d ids", st.Key, len(st.FailedSent), len(st.IDs))
		}
		a.streaks[st.Key] = &streak{count: st.Count, lastGood: fromUnixNano(st.LastGood), failedSent: timesFrom(st.FailedSent), ids: st.IDs,
			last: st.Last, sourceIP: st.SourceIP, provider: st.Provider, probeID: st.ProbeID}
	}
	for _, l := range s.Listings {
		zones := map[string]zoneListing{}
		for _, z := range l.Zones {
			zones[z.Zone] = zoneListing{list: z.List, delistURL: z.DelistURL, txt: z.TXT, weight: z.Weight, answerCodes: z.AnswerCodes, eventID: z.EventID}
		}
		a.listings[l.Target] = zones
	}
	for _, p := range s.Spam {
		a.spam[p.Key] = &placements{spam: p.Spam, ids: p.IDs, sourceIP: p.SourceIP, provider: p.Provider}
	}
	for _, l := range s.Latency {
		var samples []latencySample
		for _, sm := range l.Samples {
			samples = append(samples, latencySample{at: fromUnixNano(sm.At), ms: sm.Ms, id: sm.ID})
		}
		a.latency[l.Key] = samples
	}
	for _, d := range s.Delisted {
		a.delisted[d.Key] = delisting{at: fromUnixNano(d.At), zone: d.Zone, list: d.List}
	}
	for _, gs := range s.Reports {
		g := &reportAgg{rule: gs.Rule, subject: gs.Subject, key: gs.DedupeKey, sourceIP: gs.SourceIP, reporter: gs.Reporter, domain: gs.Domain,
			entries: map[string]reportEntry{}, bad: gs.Bad, all: gs.All, minEnd: fromUnixNano(gs.MinEnd)}
		for _, en := range gs.Entries {
			g.entries[en.ID] = reportEntry{end: fromUnixNano(en.End), day: en.Day, bad: en.Bad, all: en.All, rejected: en.Rejected,
				quarantined: en.Quarantined, reportID: en.ReportID, reporter: en.Reporter, domain: en.Domain, headerFrom: en.HeaderFrom, kinds: en.Kinds}
		}
		for _, dc := range gs.PerDay {
			if g.perDay == nil {
				g.perDay = map[string]uint64{}
			}
			g.perDay[dc.Day] = dc.N
		}
		a.reports[gs.Key] = g
	}
	// Keep what the worker set on the engine it replaces.
	r.Replaying, r.Hold = e.Replaying, e.Hold
	*e = *r
	return nil
}

// configHash names the configuration a checkpoint's state was built
// with. Every setting takes part except the checkpoint's own and those
// that only pace the worker (tick, retries), so a checkpoint is used only
// by a configuration that would have built the same state.
func configHash(cfg Config) string {
	cfg.Checkpoint = CheckpointConfig{}
	cfg.Tick, cfg.RetryMin, cfg.RetryMax = 0, 0, 0
	b, err := json.Marshal(cfg)
	if err != nil {
		panic(err) // a Config always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// encodeCheckpoint serializes c (gob).
func encodeCheckpoint(c *checkpoint) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeCheckpoint parses a checkpoint and checks it is of this version.
func decodeCheckpoint(b []byte) (*checkpoint, error) {
	var c checkpoint
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&c); err != nil {
		return nil, fmt.Errorf("undecodable: %w", err)
	}
	if c.Version != checkpointVersion {
		return nil, fmt.Errorf("format version %d, this release reads %d", c.Version, checkpointVersion)
	}
	return &c, nil
}

// streamPos returns the position of stream in c.
func (c *checkpoint) streamPos(stream string) (streamPos, bool) {
	i, ok := slices.BinarySearchFunc(c.Streams, stream, func(p streamPos, s string) int { return cmp.Compare(p.Stream, s) })
	if !ok {
		return streamPos{}, false
	}
	return c.Streams[i], true
}
