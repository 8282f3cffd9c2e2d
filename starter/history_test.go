package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

func TestReplayReportsOKAndFailureClearly(t *testing.T) {
	var out bytes.Buffer
	if err := replay("../tests/testdata/histories/planned.json", &out); err != nil || !strings.Contains(out.String(), "OK") {
		t.Fatalf("replay of a recorded history: %v %s", err, out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"events": []}`), 0o600)
	if err := replay(bad, &out); err == nil || !strings.Contains(err.Error(), "FAILED") {
		t.Fatalf("replay of an empty history: %v", err)
	}
}

func TestPostmortemOfRecordedHistories(t *testing.T) {
	cases := map[string][]string{
		"planned.json":   {"# Postmortem: PlannedSwitchover", "| DemotePrimary |", "| PublishTopology |", "status **completed**"},
		"unplanned.json": {"# Postmortem: UnplannedFailover", "| ConfirmPrimaryDead |", "| PromoteCandidate |"},
		"aborted.json":   {"## Approval gate", "**abort** by **alice**", "Temporal client \"23662@vm@\"", "nothing was changed"},
	}
	for file, wants := range cases {
		f, err := os.Open(filepath.Join("../tests/testdata/histories", file))
		if err != nil {
			t.Fatal(err)
		}
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		postmortem(h, &out)
		for _, w := range wants {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: postmortem lacks %q:\n%s", file, w, out.String())
			}
		}
	}
}

func readTestHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	f, err := os.Open(filepath.Join("../tests/testdata/histories", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// postmortem -o json is the same report as data; the memo's version is shown when the run
// has one.
func TestPostmortemJSONAndStarterVersion(t *testing.T) {
	h := readTestHistory(t, "planned.json")
	r := buildPostmortem(h)
	if r.Workflow != "PlannedSwitchover" || r.Status != "completed" || len(r.Steps) == 0 || r.StartedBy != "" {
		t.Fatalf("report: %+v", r)
	}
	var out bytes.Buffer
	if err := (&output{format: "json"}).print(&out, r, nil); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Workflow string
		Steps    []struct {
			Name    string  `json:"name"`
			Outcome string  `json:"outcome"`
			Dur     float64 `json:"duration_ms"`
		} `json:"steps"`
		Result struct{ Outcome, Cluster string } `json:"result"`
	}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Result.Outcome != "succeeded" || back.Result.Cluster != "demo" {
		t.Fatalf("%v %+v\n%s", err, back, out.String())
	}
	names := map[string]bool{}
	for _, s := range back.Steps {
		names[s.Name] = true
	}
	if !names["DemotePrimary"] || !names["PublishTopology"] {
		t.Fatalf("steps: %+v", back.Steps)
	}
	p, err := converter.GetDefaultDataConverter().ToPayload("v9.9.9 abc (go1.26.0)")
	if err != nil {
		t.Fatal(err)
	}
	h.Events[0].GetWorkflowExecutionStartedEventAttributes().Memo = &commonpb.Memo{Fields: map[string]*commonpb.Payload{memoVersion: p}}
	out.Reset()
	postmortem(h, &out)
	if !strings.Contains(out.String(), "- started by baton v9.9.9 abc (go1.26.0)\n") {
		t.Fatalf("no starter version:\n%s", out.String())
	}
}
