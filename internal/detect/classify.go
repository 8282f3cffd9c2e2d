package detect

import (
	"fmt"
	"strings"
)

// Verdict is the detector's holistic judgement of a primary.
type Verdict int

const (
	// Healthy: the detector reaches the primary.
	Healthy Verdict = iota
	// Suspect: some probes failed, not yet enough to decide.
	Suspect
	// UnreachablePrimary: the detector cannot reach the primary but a replica still can.
	// Never a failover: the detector may be the one cut off.
	UnreachablePrimary
	// DeadPrimary: the detector cannot reach it and the replicas agree.
	DeadPrimary
)

func (v Verdict) String() string {
	return [...]string{"Healthy", "Suspect", "UnreachablePrimary", "DeadPrimary"}[v]
}

// ReplicaView is what one replica says about the primary.
type ReplicaView struct {
	Name        string
	Zone        string
	Reachable   bool   // the detector could ask it
	IOConnected bool   // its IO thread is connected to the primary
	IOState     string // Yes, Connecting, No
	IOError     string
	// AgentOK is its heartbeat agent's own connect attempt: nil when unknown.
	AgentOK *bool
}

// Evidence is everything the detector knows when it decides.
type Evidence struct {
	Reaches       bool // a fresh connection from the detector succeeded
	ConnDropped   bool // the persistent connection to the primary broke
	ProbeFailures int
	Threshold     int
	Replicas      []ReplicaView
	// PrimaryZone is the primary's zone: a replica there that nobody reaches is taken to
	// have gone down with it (a zone outage), not to vouch for it.
	PrimaryZone string
}

// Classify decides from the evidence, and says why.
func Classify(e Evidence) (Verdict, string) {
	if e.Reaches {
		return Healthy, "the detector reaches the primary"
	}
	if !e.ConnDropped && e.ProbeFailures < e.Threshold {
		return Suspect, fmt.Sprintf("%d of %d probes failed", e.ProbeFailures, e.Threshold)
	}
	var agree, disagree, gone []string
	for _, r := range e.Replicas {
		agentDown := r.AgentOK != nil && !*r.AgentOK
		switch {
		case agentDown:
			// Its agent's fresh connection failed. This outvotes the IO thread, which MariaDB
			// reports as running for many seconds into a partition.
			agree = append(agree, r.Name+": its host cannot reach the primary")
		case r.Reachable && r.IOConnected:
			disagree = append(disagree, r.Name+": IO thread connected")
		case r.Reachable:
			agree = append(agree, fmt.Sprintf("%s: IO thread %s %s", r.Name, r.IOState, r.IOError))
		case e.PrimaryZone != "" && r.Zone == e.PrimaryZone:
			gone = append(gone, r.Name)
		default:
			disagree = append(disagree, r.Name+": unreachable, cannot vouch")
		}
	}
	why := "detector: "
	if e.ConnDropped {
		why += "connection dropped, reconnect failed"
	} else {
		why += fmt.Sprintf("%d consecutive probes failed", e.ProbeFailures)
	}
	if len(agree) > 0 && len(disagree) == 0 {
		why += "; replicas agree: " + strings.Join(agree, "; ")
		if len(gone) > 0 {
			// Orchestrator's DeadMasterAndSomeReplicas: the primary's zone went down whole.
			why += fmt.Sprintf("; unreachable in the primary's zone %s, taken as dead with it: %s", e.PrimaryZone, strings.Join(gone, ", "))
		}
		return DeadPrimary, why
	}
	if len(agree) > 0 {
		// Some replicas still see it: only those links are cut, not the primary.
		return UnreachablePrimary, why + "; but " + strings.Join(disagree, "; ")
	}
	return UnreachablePrimary, why + "; no replica confirms: " + strings.Join(disagree, "; ")
}
