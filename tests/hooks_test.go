package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/activities"
)

// The sandbox configures two hooks (deploy/local/templates/baton.yaml): "gate" at the pre
// points and "record" at the post points, both deploy/local/hook.sh, which appends each
// event to state/hooks/<point>.jsonl, vetoes while hooks/veto exists and hangs while
// hooks/hang exists.

func hooksDir() string { return filepath.Join(sandbox["SANDBOX_STATE"], "hooks") }

// hookEvents returns the events a hook point has received for the workflow run.
func hookEvents(t *testing.T, point, runID string) []activities.Event {
	t.Helper()
	f, err := os.Open(filepath.Join(hooksDir(), point+".jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []activities.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev activities.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s.jsonl: %v in %q", point, err, sc.Text())
		}
		if runID == "" || ev.RunID == runID {
			out = append(out, ev)
		}
	}
	return out
}

// hookFlag creates hooks/<name> (veto or hang) until the test ends.
func hookFlag(t *testing.T, name, text string) {
	t.Helper()
	if err := os.MkdirAll(hooksDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(hooksDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(p) })
}

func lastSwitchover(t *testing.T) (runID string) {
	t.Helper()
	runs := listWorkflows(t, "WorkflowType='PlannedSwitchover' AND BatonCluster='demo'")
	if len(runs) == 0 {
		t.Fatal("no switchover run")
	}
	return runs[0]
}

func TestPostSwitchoverHookGetsEveryField(t *testing.T) {
	waitSwitchoverReady(t)
	before := readTopo(t)
	out, code := baton(t, "switchover", "--cluster", "demo")
	if code != 0 {
		t.Fatalf("switchover exit %d:\n%s", code, out)
	}
	after := readTopo(t)
	run := lastSwitchover(t)
	pre, post := hookEvents(t, "pre-switchover", run), hookEvents(t, "post-switchover", run)
	if len(pre) != 1 || len(post) != 1 {
		t.Fatalf("run %s: %d pre-switchover and %d post-switchover events, want 1 each", run, len(pre), len(post))
	}
	ev := post[0]
	want := activities.Event{Cluster: "demo", Point: "post-switchover", Kind: "planned", OldPrimary: before.Primary.Name,
		NewPrimary: after.Primary.Name, Epoch: after.Epoch, WorkflowID: "failover/demo", RunID: run}
	got := ev
	got.Reason, got.RequestedBy, got.At = "", "", time.Time{}
	if got != want {
		t.Fatalf("post-switchover event\n got %+v\nwant %+v", ev, want)
	}
	if ev.Reason == "" || ev.RequestedBy == "" || time.Since(ev.At) > time.Minute {
		t.Fatalf("reason, requested_by or at missing: %+v", ev)
	}
	if pre[0].Epoch != before.Epoch || pre[0].NewPrimary != after.Primary.Name {
		t.Fatalf("pre-switchover event %+v: want epoch %d and the candidate %s", pre[0], before.Epoch, after.Primary.Name)
	}
}

func TestPreSwitchoverHookVetoChangesNothing(t *testing.T) {
	waitSwitchoverReady(t)
	hookFlag(t, "veto", "release 4.2 is rolling out")
	before := snapshot(t)
	out, code := baton(t, "switchover", "--cluster", "demo")
	t.Log(out)
	if code == 0 {
		t.Fatal("a vetoed switchover exited 0")
	}
	for _, want := range []string{`pre-switchover hook "gate" vetoed the switchover of demo`, "release 4.2 is rolling out", "vetoed planned"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "catch up replicas") {
		t.Fatalf("the switchover went on past the veto:\n%s", out)
	}
	if after := snapshot(t); after.String() != before.String() {
		t.Fatalf("a vetoed switchover changed the cluster:\nbefore %s\nafter  %s", before, after)
	}
}

func TestHangingPreFailoverHookCostsNoMoreThanItsTimeout(t *testing.T) {
	row, before, load := underLoad(t, "pre-failover hook hangs")
	hookFlag(t, "hang", "")
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	after := waitNewPrimary(t, before.Primary.Name, 20*time.Second)
	res := lastFailover(t)
	if len(res.HookProblems) != 1 || !strings.Contains(res.HookProblems[0], "pre-failover hook gate did not answer within 2s") {
		t.Fatalf("hook problems %q, want the gate's timeout", res.HookProblems)
	}
	var hook, wait, promote *time.Time
	var hookTook time.Duration
	for _, s := range res.Steps {
		switch s.Name {
		case "pre-failover hook gate":
			hook, hookTook = &s.Start, s.Duration
		case "wait for relay log":
			wait = &s.Start
		case "promote candidate":
			promote = &s.Start
		}
	}
	if hook == nil || wait == nil || promote == nil {
		t.Fatalf("steps %v lack the hook, the relay-log wait or the promotion", stepNames(res))
	}
	// The hook runs beside the relay-log wait: the promotion waits for it, at most its timeout.
	cost := promote.Sub(*wait)
	t.Logf("hook ran %s; relay-log wait start -> promotion %s", hookTook, cost)
	if cost > 2*time.Second+time.Second {
		t.Fatalf("the promotion came %s after the relay-log wait began: a 2 s hook cost more than its timeout", cost)
	}
	if out, err := exec.Command("pgrep", "-f", "sleep 600").Output(); err == nil {
		t.Fatalf("the hung hook's child outlived it: pids %s", out)
	}
	post := hookEvents(t, "post-failover", "")
	if len(post) == 0 || post[len(post)-1].NewPrimary != after.Primary.Name || post[len(post)-1].OldPrimary != before.Primary.Name {
		t.Fatalf("post-failover events %+v: want the last one from %s to %s", post, before.Primary.Name, after.Primary.Name)
	}
	assertHealthy(t, load, row)
}
