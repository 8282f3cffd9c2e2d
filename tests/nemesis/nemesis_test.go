package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPlanIsDeterministicFromItsSeed(t *testing.T) {
	cl := []string{"demo", "demo2"}
	a, b := Plan(42, 3*time.Minute, cl, 2), Plan(42, 3*time.Minute, cl, 2)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two plans of seed 42 differ or are empty:\n%v\n%v", a, b)
	}
	if c := Plan(43, 3*time.Minute, cl, 2); reflect.DeepEqual(a, c) {
		t.Fatal("seeds 42 and 43 gave the same plan")
	}
}

func TestPlanStaysInItsWindowAndBounds(t *testing.T) {
	cl := []string{"demo", "demo2"}
	kinds := map[Kind]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		fs := Plan(seed, 30*time.Minute, cl, 2)
		for i, f := range fs {
			kinds[f.Kind] = true
			if f.At < firstFault || f.At >= 30*time.Minute-quietPeriod {
				t.Fatalf("seed %d: %s starts at %s, outside the run's window", seed, f, f.At)
			}
			if f.Hold < 0 || f.Hold > maxHold {
				t.Fatalf("seed %d: %s holds %s", seed, f, f.Hold)
			}
			if i > 0 && f.Overlap && fs[i-1].Resource() == f.Resource() {
				t.Fatalf("seed %d: %s overlaps %s on one resource", seed, f, fs[i-1])
			}
			if i > 0 && !f.Overlap && f.At < fs[i-1].At+fs[i-1].Hold {
				t.Fatalf("seed %d: %s starts before %s ends", seed, f, fs[i-1])
			}
			if f.Kind == PartitionZone && f.Cluster != "demo" {
				t.Fatalf("seed %d: a zone partition of %s (only demo has a zone mate)", seed, f.Cluster)
			}
		}
		if fs1 := Plan(seed, 30*time.Minute, cl, 1); len(fs1) > 0 {
			for _, f := range fs1 {
				if f.Overlap {
					t.Fatalf("seed %d: an overlap with -max-overlap 1: %s", seed, f)
				}
			}
		}
	}
	for _, w := range weights {
		if !kinds[w.k] {
			t.Errorf("200 plans never drew %s", w.k)
		}
	}
}

func TestSplitBrainNeedsTwoWritableReachableNodes(t *testing.T) {
	cases := []struct {
		name   string
		sample map[string]NodeState
		want   []string
	}{
		{"one primary, two replicas", map[string]NodeState{
			"node1": {Reachable: true}, "node2": {Reachable: true, ReadOnly: true, Replicating: true},
			"node3": {Reachable: true, ReadOnly: true, Replicating: true}}, nil},
		{"an unreachable node is not writable", map[string]NodeState{
			"node1": {Reachable: false}, "node2": {Reachable: true}}, nil},
		{"no primary at all (mid-failover)", map[string]NodeState{
			"node1": {}, "node2": {Reachable: true, ReadOnly: true}}, nil},
		{"two writable", map[string]NodeState{
			"node3": {Reachable: true}, "node1": {Reachable: true}, "node2": {Reachable: true, ReadOnly: true}}, []string{"node1", "node3"}},
	}
	for _, c := range cases {
		if got := SplitBrain(c.sample); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestVerdictFailsOnEveryFinding(t *testing.T) {
	clean := Report{Seed: 1, Checker: CheckerReport{Samples: 100, Acked: 5000, Clients: []ClientReport{
		{Name: "app via local HAProxy demo", App: true, Acked: 5000}, {Name: "#3 partition-node side", Acked: 0}}}}
	if pass, why := Verdict(clean); !pass {
		t.Fatalf("a clean run failed: %v", why)
	}
	for name, spoil := range map[string]func(*Report){
		"a lost write":         func(r *Report) { r.Checker.Lost = 1 },
		"a split-brain sample": func(r *Report) { r.Checker.SplitBrain = 1 },
		"a losing-side ack":    func(r *Report) { r.Checker.LosingSide = 1 },
		"a stuck workflow":     func(r *Report) { r.Checker.Stuck = []string{"failover/demo"} },
		"an unwatched cluster": func(r *Report) { r.Checker.Unwatched = []string{"demo2"} },
		"a member problem":     func(r *Report) { r.Checker.MemberProblems = []string{"errant"} },
		"a refused rejoin":     func(r *Report) { r.Refused = []string{"node1 ErrantGTIDs"} },
		"a heal error":         func(r *Report) { r.HealErrors = []string{"start-node"} },
		"a check that failed":  func(r *Report) { r.Checker.Errors = []string{"temporal"} },
		"a checker that slept": func(r *Report) { r.Checker.Samples = 0 },
		"an app client with no ack": func(r *Report) {
			r.Checker.Clients = []ClientReport{{Name: "app via local HAProxy demo", App: true, Failed: 88256, LastError: "Table 'app.writes' doesn't exist"}}
		},
	} {
		r := clean
		spoil(&r)
		pass, why := Verdict(r)
		if pass || len(why) == 0 {
			t.Errorf("%s: the verdict passed", name)
		}
		var b strings.Builder
		if r.Print(&b) || !strings.Contains(b.String(), "VERDICT: FAIL (seed 1)") {
			t.Errorf("%s: the summary does not end in FAIL:\n%s", name, b.String())
		}
	}
}
