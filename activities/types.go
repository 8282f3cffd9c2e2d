package activities

import (
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// Check is one pre-failover check and its outcome.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// ReplicaReport is what Baton saw of one replica when it planned.
type ReplicaReport struct {
	Node topology.Node
	// GTIDs is what the replica holds: executed, or received and not yet applied.
	GTIDs    string
	LagMS    int64 // -1 when unknown
	IO       string
	SQL      bool
	Eligible bool
	Why      string
}

// Plan is the outcome of the pre-failover checks: who moves where, and why.
type Plan struct {
	Cluster    string
	OldPrimary topology.Node
	Candidate  topology.Node
	// Others are the live replicas other than the candidate.
	Others []topology.Node
	// Lost are replicas that could not be reached when the failover chose (or candidates
	// that died after): they are evicted, not waited for.
	Lost []topology.Node `json:",omitempty"`
	// LeftBehind says which transactions a lost candidate held that this candidate lacks:
	// acknowledged writes may be among them, until that node is back.
	LeftBehind []string `json:",omitempty"`
	// CatchUpFrom is a replica that holds transactions the candidate lacks and may not be
	// promoted itself: the candidate replicates from it after the cut and before its
	// promotion (WaitRelayLog), so nothing any replica received is dropped.
	CatchUpFrom *topology.Node `json:",omitempty"`
	Epoch       uint64
	EpochIndex  uint64
	Reason      string
	Replicas    []ReplicaReport
	Checks      []Check
	Approval    Approval
	// Hooks are the cluster's configured hooks (names and timing only).
	Hooks []HookRef `json:",omitempty"`
}

// Approval is whether a human must approve the plan before the demotion, and who may.
type Approval struct {
	Required  bool
	Reason    string
	Approvers []string
	Timeout   time.Duration
}
