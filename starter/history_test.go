package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
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
		"aborted.json":   {"## Approval gate", "**abort** by **alice**", "nothing was changed"},
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
