package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// NodeState is one node in one sample of the checker.
type NodeState struct {
	Reachable   bool
	ReadOnly    bool
	Replicating bool // SHOW SLAVE STATUS shows an IO or SQL thread running
}

// Writable is what a split brain is made of: a node that answers and takes writes. A node
// that cannot be reached is not writable.
func (s NodeState) Writable() bool { return s.Reachable && !s.ReadOnly }

// SplitBrain returns the writable nodes of one cluster's sample (sorted) when there are
// two or more of them at once, nil otherwise.
func SplitBrain(sample map[string]NodeState) []string {
	var w []string
	for n, s := range sample {
		if s.Writable() {
			w = append(w, n)
		}
	}
	if len(w) < 2 {
		return nil
	}
	sort.Strings(w)
	return w
}

// SplitSample is a split-brain sample as recorded.
type SplitSample struct {
	At       time.Time
	Cluster  string
	Writable []string
	Consul   string // the primary Consul named at the time
}

// ClientReport is one write client of the checker.
type ClientReport struct {
	Name    string
	Cluster string
	// App is the application's client through the cluster's local HAProxy; the others
	// are side clients of partitions, which may rightly get no acknowledgement at all.
	App    bool
	Acked  int
	Failed int64
	Lost   int // acked ids missing on at least one live member at the end
	// LosingSide is how many writes this client had acknowledged by a node after Consul
	// named another primary (a client on the cut-off side of a partition).
	LosingSide int
	Note       string
	LastError  string
}

// Takeover is a change of primary the checker saw in Consul.
type Takeover struct {
	At       time.Time
	Cluster  string
	From, To string
	Epoch    uint64
}

// CheckerReport is what the independent checker found.
type CheckerReport struct {
	Samples        int
	SplitBrain     int
	SplitSamples   []SplitSample // the first ones
	Clients        []ClientReport
	Acked, Lost    int
	LosingSide     int
	Takeovers      []Takeover
	Workflows      map[string]int // "UnplannedFailover succeeded" -> count
	LeftOut        []string       // what failovers reported they may have left behind
	Failed         []string       // each failed workflow and its error, for the analysis of the run
	Unverified     []string       // routing the failovers could not check (RoutingUnverified)
	Stuck          []string       // workflows still open at the end
	Unwatched      []string       // clusters no detector holds at the end
	MemberProblems []string       // GTID sets both ways, semi-sync flags, evicted left over
	Errors         []string       // checks that could not run
	Pretended      bool           // -pretend-lost: a deliberately broken check
}

// Event is one line of the run's timeline.
type Event struct {
	At   time.Duration
	Text string
}

// Report is the whole run: the schedule as executed, the operator's heals, and the checker.
type Report struct {
	Seed        uint64
	Duration    time.Duration
	Planned     []Fault
	Timeline    []Event
	Injected    map[Kind]int
	Rejoins     int
	Refused     []string // rejoins refused (ErrantGTIDs, MissingOwnGTIDs): findings
	Rebuilds    int
	HealErrors  []string // a fault that could not be undone or a cluster that did not heal
	FaultErrors []string // a fault that could not be injected (not a finding about Baton)
	Checker     CheckerReport
}

// Verdict is PASS only when the checker found nothing and every heal worked.
func Verdict(r Report) (pass bool, reasons []string) {
	c := r.Checker
	add := func(n int, format string, a ...any) {
		if n > 0 {
			reasons = append(reasons, fmt.Sprintf(format, a...))
		}
	}
	add(c.Lost, "%d acknowledged writes lost (missing on a live member)", c.Lost)
	add(c.SplitBrain, "%d split-brain samples (two writable nodes of one cluster at once)", c.SplitBrain)
	add(c.LosingSide, "%d writes acknowledged on a losing side after a new primary took over", c.LosingSide)
	add(len(c.Stuck), "%d workflows stuck open: %s", len(c.Stuck), strings.Join(c.Stuck, ", "))
	add(len(c.Unwatched), "clusters no detector watches: %s", strings.Join(c.Unwatched, ", "))
	add(len(c.MemberProblems), "%d member problems", len(c.MemberProblems))
	add(len(c.Errors), "%d checks could not run", len(c.Errors))
	add(len(r.Refused), "%d rejoins refused", len(r.Refused))
	add(len(r.HealErrors), "%d heal errors", len(r.HealErrors))
	if c.Samples == 0 {
		reasons = append(reasons, "the checker took no sample")
	}
	for _, cl := range c.Clients {
		if cl.App && cl.Acked == 0 {
			reasons = append(reasons, fmt.Sprintf("%s got no write acknowledged (%d failed, last error %q): the run proves nothing about lost writes", cl.Name, cl.Failed, cl.LastError))
		}
	}
	return len(reasons) == 0, reasons
}

// Print writes the summary, ending with the verdict line.
func (r Report) Print(w io.Writer) bool {
	c := r.Checker
	fmt.Fprintf(w, "\nNEMESIS SUMMARY  seed %d  duration %s  (replay: go run ./tests/nemesis -seed %d -duration %s)\n", r.Seed, r.Duration, r.Seed, r.Duration)
	fmt.Fprintf(w, "\nplanned schedule (%d faults):\n", len(r.Planned))
	for _, f := range r.Planned {
		fmt.Fprintf(w, "  not before t+%-7s %s\n", f.At.Round(100*time.Millisecond), f)
	}
	fmt.Fprintf(w, "\ntimeline:\n")
	for _, e := range r.Timeline {
		fmt.Fprintf(w, "  t+%-8s %s\n", e.At.Round(100*time.Millisecond), e.Text)
	}
	fmt.Fprintf(w, "\nfaults injected by kind:\n")
	var kinds []string
	total := 0
	for k, n := range r.Injected {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "  %d in all: %s\n", total, strings.Join(kinds, ", "))
	var wf []string
	for k, n := range c.Workflows {
		wf = append(wf, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(wf)
	fmt.Fprintf(w, "workflows: %s\n", strings.Join(wf, "; "))
	for _, f := range c.Failed {
		fmt.Fprintf(w, "  failed: %s\n", f)
	}
	for _, u := range c.Unverified {
		fmt.Fprintf(w, "  routing unverified: %s\n", u)
	}
	fmt.Fprintf(w, "primary changes seen in Consul: %d\n", len(c.Takeovers))
	for _, t := range c.Takeovers {
		fmt.Fprintf(w, "  %s %s: %s -> %s (epoch %d)\n", t.At.Format("15:04:05.000"), t.Cluster, t.From, t.To, t.Epoch)
	}
	fmt.Fprintf(w, "rejoins: %d, refused: %d, rebuilds: %d\n", r.Rejoins, len(r.Refused), r.Rebuilds)
	for _, s := range r.Refused {
		fmt.Fprintf(w, "  REFUSED %s\n", s)
	}
	fmt.Fprintf(w, "write clients:\n")
	for _, cl := range c.Clients {
		note := cl.Note
		if cl.Acked == 0 && cl.LastError != "" {
			note += fmt.Sprintf(" (last error %q)", cl.LastError)
		}
		fmt.Fprintf(w, "  %-40s acked %6d  failed %6d  lost %d  losing-side acks %d %s\n", cl.Name, cl.Acked, cl.Failed, cl.Lost, cl.LosingSide, note)
	}
	fmt.Fprintf(w, "acked writes: %d, lost: %d, losing-side acks after a takeover: %d\n", c.Acked, c.Lost, c.LosingSide)
	if len(c.LeftOut) > 0 {
		fmt.Fprintf(w, "failovers reported as possibly left behind (LeftOut), counted in lost above if missing:\n")
		for _, l := range c.LeftOut {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	fmt.Fprintf(w, "split-brain samples: %d of %d\n", c.SplitBrain, c.Samples)
	for _, s := range c.SplitSamples {
		fmt.Fprintf(w, "  %s %s: writable %v (Consul named %s)\n", s.At.Format("15:04:05.000"), s.Cluster, s.Writable, s.Consul)
	}
	fmt.Fprintf(w, "stuck workflows: %d %s\n", len(c.Stuck), strings.Join(c.Stuck, ", "))
	fmt.Fprintf(w, "clusters not watched by a detector: %d %s\n", len(c.Unwatched), strings.Join(c.Unwatched, ", "))
	for _, p := range c.MemberProblems {
		fmt.Fprintf(w, "member problem: %s\n", p)
	}
	for _, e := range c.Errors {
		fmt.Fprintf(w, "check error: %s\n", e)
	}
	for _, e := range r.HealErrors {
		fmt.Fprintf(w, "heal error: %s\n", e)
	}
	for _, e := range r.FaultErrors {
		fmt.Fprintf(w, "fault not injected (not a finding): %s\n", e)
	}
	if c.Pretended {
		fmt.Fprintf(w, "NOTE: -pretend-lost was set: the lost count includes pretended writes\n")
	}
	pass, reasons := Verdict(r)
	if pass {
		fmt.Fprintf(w, "VERDICT: PASS (seed %d)\n", r.Seed)
	} else {
		fmt.Fprintf(w, "VERDICT: FAIL (seed %d): %s\n", r.Seed, strings.Join(reasons, "; "))
	}
	return pass
}
