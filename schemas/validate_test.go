package schemas

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validDecision returns a decision.cutoff that passes Validate, so each
// case below breaks exactly what it names.
func validDecision() *DecisionCutoff {
	return &DecisionCutoff{
		Header: Header{
			ID:     "0195945e-4185-702d-9d6b-6b4661d6f9a0",
			Type:   TypeDecisionCutoff,
			Time:   time.Date(2025, 3, 14, 11, 16, 0, 5e6, time.UTC),
			Source: Source{Worker: "complaint-evaluator", Host: "mon-1.example.net"},
		},
		DecisionTarget: DecisionTarget{
			Scope:    ScopeCustomer,
			Subject:  "customer:acme-retail",
			Customer: "acme-retail",
		},
		DecisionTerm: DecisionTerm{Rule: "complaint_rate", Offence: 1},
		PolicyAction: "REJECT",
		DecisionEvidence: DecisionEvidence{
			EvidenceNames:  []string{"rate"},
			EvidenceValues: []string{"0.0036"},
		},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		breakd func(d *DecisionCutoff)
		want   []string // every substring must appear in the error
	}{
		{"valid", func(*DecisionCutoff) {}, nil},
		{"empty id", func(d *DecisionCutoff) { d.ID = "" }, []string{"id: required field is empty"}},
		{"id not a uuid", func(d *DecisionCutoff) { d.ID = "42" }, []string{`id "42" is not a UUID`}},
		{"type of another kind", func(d *DecisionCutoff) { d.Type = TypeDecisionLift }, []string{"does not match"}},
		{"zero time", func(d *DecisionCutoff) { d.Time = time.Time{} }, []string{"time: required time is zero"}},
		{"time before 1970", func(d *DecisionCutoff) { d.Time = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }, []string{"outside 1970..2106"}},
		{"optional time after 2106", func(d *DecisionCutoff) { d.Until = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"until:"}},
		{"no worker", func(d *DecisionCutoff) { d.Source.Worker = "" }, []string{"source_worker: required"}},
		{"bad enum", func(d *DecisionCutoff) { d.Scope = "tenant" }, []string{`scope: "tenant" is not one of`}},
		{"required empty", func(d *DecisionCutoff) { d.PolicyAction = "" }, []string{"policy_action: required"}},
		{"parallel mismatch", func(d *DecisionCutoff) { d.EvidenceValues = nil }, []string{"evidence_values has 0 entries but evidence_names has 1"}},
		{"every problem at once", func(d *DecisionCutoff) { d.Scope = "x"; d.Rule = ""; d.Time = time.Time{} }, []string{"scope:", "rule:", "time:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDecision()
			tt.breakd(d)
			err := Validate(d)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestValidateEnumItems(t *testing.T) {
	a := &DNSAudit{
		Header:            Header{ID: NewID(), Type: TypeDNSAudit, Time: time.Now(), Source: Source{Worker: "dns-sweeper", Host: "h"}},
		AuditID:           "a",
		Target:            "example.com",
		TargetKind:        TargetDomain,
		WorstSeverity:     SeverityWarning,
		FindingChecks:     []string{"spf", "dmarc"},
		FindingSeverities: []string{SeverityOK, "fatal"},
		FindingMessages:   []string{"ok", "no record"},
	}
	err := Validate(a)
	if err == nil || !strings.Contains(err.Error(), `finding_severities[1]: "fatal"`) {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateBadInput(t *testing.T) {
	var nilCutoff *DecisionCutoff
	if err := Validate(nil); err == nil {
		t.Error("Validate(nil) succeeded")
	}
	if err := Validate(nilCutoff); err == nil {
		t.Error("Validate of a nil pointer succeeded")
	}
	if err := Validate(&strayEvent{}); err == nil {
		t.Error("Validate of an unregistered type succeeded")
	}
}

func TestDecode(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(examplesDir, TypeAlertRaised+".json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		doc  string
		want string // substring of the error; "" means success
	}{
		{"example", string(example), ""},
		{"not json", `{"type":`, "decode event"},
		{"not an object", `[1, 2]`, "decode event"},
		{"no type", `{"id": "x"}`, "no type field"},
		{"unknown type", `{"type": "mailmon.probe.v9.sent"}`, `unknown type "mailmon.probe.v9.sent"`},
		{"unknown field", `{"type": "mailmon.alert.v1.raised", "colour": "blue"}`, `unknown field "colour"`},
		{"wrong field type", `{"type": "mailmon.alert.v1.raised", "rule": 7}`, "cannot unmarshal number"},
		{"negative unsigned", `{"type": "mailmon.decision.v1.lift", "offence": -1}`, "cannot unmarshal number"},
		{"trailing data", `{"type": "mailmon.alert.v1.raised"} {}`, "after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode([]byte(tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				a, ok := ev.(*AlertRaised)
				if !ok || a.Rule != "complaint_rate" || a.Source.Worker != "complaint-evaluator" || len(a.EvidenceNames) != 5 {
					t.Fatalf("Decode gave %#v", ev)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error %v, want one containing %q", err, tt.want)
			}
			if ev != nil {
				t.Errorf("Decode returned an event with an error: %#v", ev)
			}
		})
	}
}

func TestDecodeAs(t *testing.T) {
	for _, k := range Kinds() {
		byTopic, ok := KindBySubject(k.Subject)
		if !ok || byTopic.Type != k.Type {
			t.Errorf("KindBySubject(%s) = %v, %v; want %s", k.Subject, byTopic.Type, ok, k.Type)
		}
	}
	if _, ok := KindBySubject("mailmon.probe.v9.sent"); ok {
		t.Error("KindBySubject found a kind for an unregistered subject")
	}
	example, err := os.ReadFile(filepath.Join(examplesDir, TypeAlertRaised+".json"))
	if err != nil {
		t.Fatal(err)
	}
	alert := mustKind(t, TypeAlertRaised)
	ev, err := DecodeAs(alert, example)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := ev.(*AlertRaised); !ok || a.Rule != "complaint_rate" {
		t.Fatalf("DecodeAs gave %#v", ev)
	}
	tests := []struct {
		name string
		kind Kind
		doc  string
		want string
	}{
		{"other kind's document", mustKind(t, TypeProbeSent), string(example), "unknown field"},
		{"type of another kind", alert, `{"type": "mailmon.probe.v1.sent"}`, `the document's type is "mailmon.probe.v1.sent"`},
		{"no type", alert, `{"rule": "x"}`, `the document's type is ""`},
		{"unknown field", alert, `{"type": "mailmon.alert.v1.raised", "colour": "blue"}`, `unknown field "colour"`},
		{"trailing data", alert, `{"type": "mailmon.alert.v1.raised"} {}`, "data after the event document"},
		{"no kind", Kind{}, string(example), "no kind given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeAs(tt.kind, []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeAs error %v, want one containing %q", err, tt.want)
			}
			if ev != nil {
				t.Errorf("DecodeAs returned an event with an error: %#v", ev)
			}
		})
	}
}
