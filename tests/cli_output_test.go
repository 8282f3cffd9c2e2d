package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// batonJSON runs a reading verb with -o json and decodes its stdout (stderr is merged by
// baton(); these verbs print nothing there on success).
func batonJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, code := baton(t, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("baton %v -o json: exit %d\n%s", args, code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("baton %v -o json: %v\n%s", args, err, out)
	}
}

// The reading verbs' -o json against the sandbox, and the exit codes of a refusal and a
// usage error. Read-only: nothing here starts an operation or writes to Consul (the reads
// run on the worker as Inspect workflows).
func TestReadingVerbsJSONAndExitCodes(t *testing.T) {
	var st struct {
		Clusters []struct {
			Cluster string `json:"cluster"`
			Nodes   []struct {
				Name string `json:"name"`
				Role string `json:"role"`
			} `json:"nodes"`
			Workflow *struct{ Type string } `json:"workflow"`
		} `json:"clusters"`
	}
	batonJSON(t, &st, "status")
	primary, open := "", false
	for _, c := range st.Clusters {
		if c.Cluster != "demo" {
			continue
		}
		open = c.Workflow != nil
		for _, n := range c.Nodes {
			if n.Role == "primary" {
				primary = n.Name
			}
		}
	}
	if primary == "" || primary != readTopo(t).Primary.Name {
		t.Fatalf("status -o json: demo's primary %q, Consul says %q", primary, readTopo(t).Primary.Name)
	}

	var list []struct {
		Cluster   string   `json:"cluster"`
		Primary   string   `json:"primary"`
		Replicas  []string `json:"replicas"`
		InCatalog bool     `json:"in_catalog"`
	}
	batonJSON(t, &list, "cluster", "list")
	found := false
	for _, c := range list {
		found = found || (c.Cluster == "demo" && c.Primary == primary && c.InCatalog && len(c.Replicas) > 0)
	}
	if !found {
		t.Fatalf("cluster list -o json lacks demo with primary %s: %+v", primary, list)
	}

	var cfg struct {
		Valid    bool     `json:"valid"`
		Clusters []string `json:"clusters"`
	}
	batonJSON(t, &cfg, "config", "validate")
	if !cfg.Valid || !strings.Contains(strings.Join(cfg.Clusters, ","), "demo") {
		t.Fatalf("config validate -o json: %+v", cfg)
	}
	var ver struct{ Version, Go string }
	batonJSON(t, &ver, "version")
	if ver.Version == "" || ver.Go == "" {
		t.Fatalf("version -o json: %+v", ver)
	}
	var rec struct {
		Enabled bool   `json:"enabled"`
		Cluster string `json:"cluster"`
	}
	batonJSON(t, &rec, "recoveries", "--cluster", "demo")
	if rec.Cluster != "demo" {
		t.Fatalf("recoveries -o json: %+v", rec)
	}
	var pm struct {
		Workflow string `json:"workflow"`
		Status   string `json:"status"`
		Steps    []struct {
			Name string `json:"name"`
		} `json:"steps"`
	}
	batonJSON(t, &pm, "postmortem", "--workflow-id", "failover/demo")
	if pm.Workflow == "" || pm.Status == "" {
		t.Fatalf("postmortem -o json: %+v", pm)
	}

	// watch replays a finished run: one JSON object a line, the last its end.
	if !open {
		out, code := baton(t, "watch", "--cluster", "demo", "-o", "json")
		var lines []string // stdout's; baton() merges stderr, whose "baton: ..." line ends a failed run
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(l, "baton: ") {
				lines = append(lines, l)
			}
		}
		var end struct {
			Event    string `json:"event"`
			ExitCode *int   `json:"exit_code"`
		}
		for _, l := range lines {
			if !json.Valid([]byte(l)) {
				t.Fatalf("watch -o json: not a JSON line: %s\n%s", l, out)
			}
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &end); err != nil || end.Event != "end" || end.ExitCode == nil || *end.ExitCode != code {
			t.Fatalf("watch -o json: last line %q (exit %d): %v", lines[len(lines)-1], code, err)
		}
	}

	// Refusals, nothing changed: 3. A usage error: 2.
	for _, c := range []struct {
		want int
		args []string
		says string
	}{
		{3, []string{"switchover", "--cluster", "nope"}, `unknown cluster "nope"`},
		{3, []string{"switchover", "--cluster", "demo", "--dry-run", "--to", primary}, "is already the primary"},
		{3, []string{"downtime", "--host", primary, "--for", "1h", "--reason", " "}, "--reason is required"},
		{2, []string{"status", "--no-such-flag"}, "unknown flag"},
		{2, []string{"status", "-o", "yaml"}, "want text or json"},
	} {
		before := readTopo(t)
		out, code := baton(t, c.args...)
		if code != c.want || !strings.Contains(out, c.says) {
			t.Errorf("baton %v: exit %d, want %d saying %q\n%s", c.args, code, c.want, c.says, out)
		}
		if after := readTopo(t); after.Epoch != before.Epoch || after.Primary.Name != before.Primary.Name {
			t.Fatalf("baton %v changed the topology", c.args)
		}
	}
}
