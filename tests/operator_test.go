package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/baton-db/baton/internal/envfile"
)

func listWorkflows(t *testing.T, query string) []string {
	t.Helper()
	c := temporalClient(t)
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: sandbox["TEMPORAL_NAMESPACE"], Query: query})
	if err != nil {
		t.Fatalf("list %q: %v", query, err)
	}
	var runs []string
	for _, e := range resp.Executions {
		runs = append(runs, e.GetExecution().GetRunId())
	}
	return runs
}

func TestSwitchoversAreListedBySearchAttributes(t *testing.T) {
	tp := readTopo(t)
	target := tp.Replicas[0].Name
	waitSwitchoverReady(t, "--to", target)
	out, code := baton(t, "switchover", "--cluster", "demo", "--to", target)
	if code != 0 {
		t.Fatalf("switchover: %s", out)
	}
	q := "BatonCluster = 'demo' AND BatonKind = 'planned' AND BatonOutcome = 'succeeded' AND BatonOldPrimary = '" +
		tp.Primary.Name + "' AND BatonNewPrimary = '" + target + "' AND BatonStep = 'post-switchover hook record'"
	var runs []string
	waitFor(t, 10*time.Second, func() bool { runs = listWorkflows(t, q); return len(runs) > 0 }) // visibility is eventually consistent
	if all := listWorkflows(t, "BatonCluster = 'demo'"); len(all) < len(runs) {
		t.Fatalf("listing every failover of demo found %d runs", len(all))
	}
}

func TestDryRunsChangeNothing(t *testing.T) {
	before := snapshot(t)
	since := time.Now()
	out, code := baton(t, "switchover", "--cluster", "demo", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run exit %d:\n%s", code, out)
	}
	for _, want := range []string{"DRY RUN", "candidate:", "PASS  no errant GTIDs", "PASS  HAProxy hosts healthy", "DemotePrimary", "replicas:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("switchover dry run lacks %q:\n%s", want, out)
		}
	}
	out, code = baton(t, "failover", "--cluster", "demo", "--dry-run")
	if code != 0 || !strings.Contains(out, "would end here as a no-op") || !strings.Contains(out, "PromoteCandidate") {
		t.Fatalf("failover dry run (exit %d):\n%s", code, out)
	}
	t.Log(out)
	assertUnchanged(t, before)
	if runs := listWorkflows(t, "BatonCluster = 'demo' AND StartTime > '"+since.UTC().Format(time.RFC3339Nano)+"'"); len(runs) != 0 {
		t.Fatalf("a dry run started %d workflows", len(runs))
	}
}

func TestApprovalGateAgainstTheSandbox(t *testing.T) {
	fault(t, "approvals: unknown approver, another run and another candidate refused; the reviewed plan approved")
	before := readTopo(t)
	done := make(chan string, 1)
	go func() {
		out, _ := baton(t, "switchover", "--cluster", "demo", "--require-approval")
		done <- out
	}()
	waitFor(t, 10*time.Second, func() bool {
		return len(listWorkflows(t, "BatonCluster = 'demo' AND BatonStep = 'waiting for approval' AND ExecutionStatus = 'Running'")) == 1
	})
	t.Cleanup(func() { baton(t, "abort", "--cluster", "demo", "--as", "alice", "--reason", "test failed") }) // never leave the gate waiting
	if out, code := baton(t, "approve", "--cluster", "demo", "--as", "mallory"); code == 0 || !strings.Contains(out, "unknown approver") {
		t.Fatalf("an unknown approver was not refused: %s", out)
	}
	// An approval is bound to the run and the candidate that were reviewed.
	var other string
	for _, r := range before.Replicas {
		other = r.Name // the last replica; the plan's candidate is checked below
	}
	for _, args := range [][]string{{"--run", "an-earlier-run"}, {"--to", before.Primary.Name}, {"--to", other + "x"}} {
		out, code := baton(t, append([]string{"approve", "--cluster", "demo", "--as", "alice"}, args...)...)
		if code == 0 || !strings.Contains(out, "this approval is for run") {
			t.Fatalf("an approval for %v was not refused:\n%s", args, out)
		}
	}
	if tp := readTopo(t); tp.Primary.Name != before.Primary.Name {
		t.Fatal("the switchover went past the gate without approval")
	}
	if out, code := baton(t, "approve", "--cluster", "demo", "--as", "alice"); code != 0 {
		t.Fatalf("approve: %s", out)
	}
	out := <-done
	if !strings.Contains(out, "approve by alice") || !strings.Contains(out, "succeeded planned") {
		t.Fatalf("switchover output:\n%s", out)
	}
	if tp := readTopo(t); tp.Primary.Name == before.Primary.Name {
		t.Fatal("approved switchover did not move the primary")
	}
}

// No password or token from the sandbox's secrets file may appear in any history or log.
func TestNoSecretInHistoriesOrLogs(t *testing.T) {
	fault(t, "secrets (a replication password with a comma, a quote and a backslash) in no history, postmortem or log")
	secretsRaw, err := envfile.Read(sandbox["SECRETS_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	var secretValues []string
	for k, v := range secretsRaw {
		if (strings.Contains(k, "PASSWORD") || strings.Contains(k, "TOKEN")) && len(v) >= 8 {
			// As written, as JSON writes it, and every piece between the characters a naive
			// redaction would stop at.
			j, _ := json.Marshal(v)
			secretValues = append(secretValues, v, strings.Trim(string(j), `"`))
			for _, part := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(`,"'\`, r) }) {
				if len(part) >= 8 {
					secretValues = append(secretValues, part)
				}
			}
		}
	}
	if pw := secretsRaw["MYSQL_REPL_PASSWORD"]; !strings.ContainsAny(pw, ",") || !strings.Contains(pw, `"`) || !strings.Contains(pw, `\`) {
		t.Fatalf("the sandbox's replication password %d chars lacks a comma, a quote or a backslash: this test would prove less", len(pw))
	}
	// The sandbox's other Consul tokens, and the private keys' PEM bodies.
	for _, f := range []string{"consul-management.token", "consul-template.token", "tls/baton-key.pem", "tls/ca-key.pem"} {
		b, err := os.ReadFile(filepath.Join(sandbox["SANDBOX_STATE"], f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				secretValues = append(secretValues, line)
			}
		}
	}
	if len(secretValues) < 8 {
		t.Fatalf("found %d secrets to look for", len(secretValues))
	}
	var docs = map[string]string{}
	c := temporalClient(t)
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: sandbox["TEMPORAL_NAMESPACE"], PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range resp.Executions {
		out, code := baton(t, "history", "export", "--workflow-id", e.GetExecution().GetWorkflowId(), "--run-id", e.GetExecution().GetRunId())
		if code != 0 {
			t.Fatalf("export: %s", out)
		}
		docs["history "+e.GetExecution().GetRunId()] = out
		pm, code := baton(t, "postmortem", "--workflow-id", e.GetExecution().GetWorkflowId(), "--run-id", e.GetExecution().GetRunId())
		if code != 0 {
			t.Fatalf("postmortem: %s", pm)
		}
		docs["postmortem "+e.GetExecution().GetRunId()] = pm
	}
	logs, _ := filepath.Glob(filepath.Join(sandbox["SANDBOX_STATE"], "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		docs[l] = string(b)
	}
	recorded, _ := filepath.Glob("testdata/histories/*.json")
	for _, f := range recorded {
		b, _ := os.ReadFile(f)
		docs[f] = string(b)
	}
	if len(resp.Executions) == 0 || len(logs) < 5 {
		t.Fatalf("searched %d histories and %d logs: too few to mean anything", len(resp.Executions), len(logs))
	}
	for name, doc := range docs {
		for _, s := range secretValues {
			if strings.Contains(doc, s) {
				t.Fatalf("a secret appears in %s", name)
			}
		}
		if strings.Contains(doc, "MASTER_PASSWORD='") && !strings.Contains(doc, "MASTER_PASSWORD='***'") {
			t.Fatalf("a replication password statement appears unredacted in %s", name)
		}
	}
	t.Logf("searched %d histories and %d logs for %d secrets", len(resp.Executions), len(logs), len(secretValues))
}
