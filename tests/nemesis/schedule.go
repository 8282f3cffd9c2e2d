package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind is one kind of fault the nemesis injects.
type Kind string

const (
	KillNode      Kind = "kill-node"        // kill -9 of a node, restarted at once or late
	StopNode      Kind = "stop-node"        // SIGSTOP of a node for Hold
	PartitionNode Kind = "partition-node"   // iptables: one node cut off from every other host
	PartitionZone Kind = "partition-zone"   // iptables: the primary's zone cut off from the other (demo)
	OneWay        Kind = "one-way"          // iptables: only the packets a node sends are dropped
	CutDetector   Kind = "cut-detector"     // iptables: the detector alone loses every MySQL node
	CutWorker     Kind = "cut-worker"       // iptables: the worker alone loses every MySQL node
	AgentConsul   Kind = "agent-consul"     // cgroup + iptables: the primary's agent alone loses Consul
	KillWorker    Kind = "kill-worker"      // kill -9 of the worker, sandbox.sh start-worker after Hold
	KillDetector  Kind = "kill-detector"    // kill -9 of the detector, start-detector after Hold
	ConsulRestart Kind = "consul-restart"   // kill -9 of one Consul server, start-consul-server after Hold
	Switchover    Kind = "switchover"       // baton switchover
	Approval      Kind = "switchover-gated" // baton switchover --require-approval, then approve or abort
	Downtime      Kind = "downtime"         // baton downtime of a node for Hold, then downtime end
	Maintenance   Kind = "maintenance"      // the cluster's maintenance flag for Hold
)

// Timing and targets.
const (
	quietPeriod   = 30 * time.Second // no fault starts in the last stretch of a run
	firstFault    = 5 * time.Second  // nor in the first seconds (the checker's load warms up)
	minGap        = 2 * time.Second  // between the end of one fault and the next one's start
	maxGap        = 8 * time.Second
	maxHold       = 20 * time.Second // longest fault
	globalPrefix  = "process:"       // resources that are not a cluster's
	targetPrimary = "primary"
	targetReplica = "replica"
	targetAnyNode = "node"
	gateApprove   = "approve"
	gateAbort     = "abort"
)

// weights: how often each kind is drawn (node faults on the primary are what fail over).
var weights = []struct {
	k Kind
	w int
}{
	{KillNode, 14}, {StopNode, 8}, {PartitionNode, 10}, {PartitionZone, 6}, {OneWay, 5},
	{CutDetector, 4}, {CutWorker, 4}, {AgentConsul, 5}, {KillWorker, 5}, {KillDetector, 5},
	{ConsulRestart, 5}, {Switchover, 8}, {Approval, 5}, {Downtime, 4}, {Maintenance, 4},
}

// Fault is one planned fault. Its target is a role (primary, replica, node) resolved
// against Consul when it starts, with Pick choosing among several.
type Fault struct {
	N       int
	At      time.Duration // not before this, from the start of the run
	Kind    Kind
	Cluster string
	Target  string        // primary, replica, node; a Consul server's number; empty
	Pick    int           // which replica / node / server, modulo their number
	Hold    time.Duration // how long the fault lasts (a kill: until the restart)
	Late    bool          // a kill restarted late rather than at once
	Gate    string        // a gated switchover: approve or abort
	Overlap bool          // may start while the previous fault still runs
}

// Resource is what a fault holds while it runs: two faults on one resource never overlap,
// so a 3-node cluster never has more than one node down at once.
func (f Fault) Resource() string {
	switch f.Kind {
	case KillWorker, CutWorker:
		return globalPrefix + "worker"
	case KillDetector, CutDetector:
		return globalPrefix + "detector"
	case ConsulRestart:
		return globalPrefix + "consul"
	}
	return "cluster:" + f.Cluster
}

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s", f.N, f.Kind)
	if !strings.HasPrefix(f.Resource(), globalPrefix) {
		fmt.Fprintf(&b, " %s", f.Cluster)
	}
	if f.Target != "" {
		fmt.Fprintf(&b, " %s", f.Target)
	}
	switch {
	case f.Kind == KillNode && f.Late:
		fmt.Fprintf(&b, ", late restart after %s", f.Hold)
	case f.Kind == KillNode:
		b.WriteString(", restarted at once")
	case f.Kind == Approval:
		fmt.Fprintf(&b, ", then %s after %s", f.Gate, f.Hold)
	case f.Kind != Switchover:
		fmt.Fprintf(&b, " for %s", f.Hold)
	}
	if f.Overlap {
		b.WriteString(" (overlapping)")
	}
	return b.String()
}

// Plan draws the schedule of a run from its seed alone: the same seed, duration, clusters
// and overlap give the same faults in the same order with the same timing.
func Plan(seed uint64, duration time.Duration, clusters []string, maxOverlap int) []Fault {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dur := func(lo, hi time.Duration) time.Duration {
		return (lo + time.Duration(rng.Int64N(int64(hi-lo)+1))).Round(100 * time.Millisecond)
	}
	total := 0
	for _, w := range weights {
		total += w.w
	}
	var out []Fault
	at := firstFault
	var prev *Fault
	for at < duration-quietPeriod {
		f := Fault{N: len(out) + 1, At: at, Cluster: clusters[rng.IntN(len(clusters))], Pick: rng.IntN(1 << 16)}
		r := rng.IntN(total)
		for _, w := range weights {
			if r < w.w {
				f.Kind = w.k
				break
			}
			r -= w.w
		}
		switch f.Kind {
		case KillNode:
			f.Target = []string{targetPrimary, targetPrimary, targetReplica}[rng.IntN(3)]
			if f.Late = rng.IntN(2) == 0; f.Late {
				f.Hold = dur(8*time.Second, maxHold)
			} else {
				f.Hold = dur(0, time.Second)
			}
		case StopNode:
			f.Target = []string{targetPrimary, targetReplica}[rng.IntN(2)]
			f.Hold = dur(500*time.Millisecond, 8*time.Second)
		case PartitionNode, OneWay:
			f.Target = []string{targetPrimary, targetPrimary, targetReplica}[rng.IntN(3)]
			f.Hold = dur(5*time.Second, maxHold)
		case PartitionZone:
			f.Cluster, f.Target, f.Hold = "demo", targetPrimary, dur(8*time.Second, maxHold)
		case AgentConsul:
			f.Target, f.Hold = targetPrimary, dur(3*time.Second, 12*time.Second)
		case CutDetector, CutWorker:
			f.Hold = dur(3*time.Second, 15*time.Second)
		case KillWorker, KillDetector:
			f.Hold = dur(0, 8*time.Second)
		case ConsulRestart:
			f.Target, f.Hold = fmt.Sprint(1+rng.IntN(3)), dur(0, 8*time.Second)
		case Approval:
			f.Gate = []string{gateApprove, gateApprove, gateAbort}[rng.IntN(3)]
			f.Hold = dur(500*time.Millisecond, 3*time.Second)
		case Downtime:
			f.Target, f.Hold = targetAnyNode, dur(10*time.Second, maxHold)
		case Maintenance:
			f.Hold = dur(10*time.Second, maxHold)
		}
		if strings.HasPrefix(f.Resource(), globalPrefix) {
			f.Cluster = ""
		}
		// Overlap: the fault starts during the previous one, if they hold different
		// resources (the run enforces it again, with -max-overlap).
		if prev != nil && maxOverlap > 1 && prev.Resource() != f.Resource() && prev.Hold > time.Second && rng.IntN(3) == 0 {
			f.Overlap = true
			f.At = prev.At + dur(0, prev.Hold)
		}
		out = append(out, f)
		prev = &out[len(out)-1]
		// The next one starts after this one ends (its heal takes what it takes; the run
		// waits for it) and a gap.
		at = max(at, f.At+f.Hold) + dur(minGap, maxGap)
	}
	return out
}

// Counts are the planned faults per kind.
func Counts(fs []Fault) map[Kind]int {
	m := map[Kind]int{}
	for _, f := range fs {
		m[f.Kind]++
	}
	return m
}
