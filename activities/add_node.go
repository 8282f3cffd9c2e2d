package activities

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// The steps of `baton node add` and `baton node replace` (the AddNode workflow): a new
// server is checked (check_new_node.go), attached to the primary (attach_node.go), waited
// for (wait_caught_up.go) and registered in Consul (register_node.go); a failure after the
// attach is undone (undo_attach.go).

// AddNodeInput asks for a new server to join a running cluster as a replica of its primary.
// It carries no secrets.
type AddNodeInput struct {
	Cluster string
	Host    string // the new node's name
	Addr    string // host:port (a host name is resolved on the worker)
	Zone    string
	By      string
	Reason  string `json:",omitempty"`
	// MaxCatchUp bounds the whole catch-up of a node with a backlog (0: DefaultMaxCatchUp);
	// the cluster's catchup_timeout bounds each round of it and any stretch without progress.
	MaxCatchUp time.Duration `json:",omitempty"`
	// Replace names the member the new node replaces (`baton node replace`): it is removed
	// once the new node is registered, in the same run.
	Replace string `json:",omitempty"`
	// Force lets Replace remove the last replica that may acknowledge commits although the
	// new node does not acknowledge in its place.
	Force bool `json:",omitempty"`
}

// DefaultMaxCatchUp is how long a new node may take to catch up in all when AddNodeInput does
// not say.
const DefaultMaxCatchUp = time.Hour

// CatchUpLimit is the bound on the whole catch-up (pure: the workflow sizes its step with it).
func (in AddNodeInput) CatchUpLimit() time.Duration {
	if in.MaxCatchUp > 0 {
		return in.MaxCatchUp
	}
	return DefaultMaxCatchUp
}

// NewNodePlan is what CheckNewNode found and every later step of AddNode acts on.
type NewNodePlan struct {
	Cluster string
	Node    topology.Node // server_id read from the server
	Primary topology.Node
	// Epoch and EpochIndex are the topology's at the check: the registration is a CAS on
	// EpochIndex, so a change of primary meanwhile refuses it (and the attach is undone).
	Epoch      uint64
	EpochIndex uint64
	// Acks: the durability policy lets the node acknowledge the primary's commits (it does
	// so only once registered, like a rejoining node).
	Acks bool
	// MadeReadOnly: the server was writable and the check made it read-only.
	MadeReadOnly bool `json:",omitempty"`
	// Replace is the member to remove afterwards (`node replace`), as Consul had it.
	Replace *topology.Node `json:",omitempty"`
	// CatchUpTimeout is the cluster's catchup_timeout; MaxCatchUp the whole catch-up's bound.
	CatchUpTimeout time.Duration
	MaxCatchUp     time.Duration
}

// NodeCatchUp is how long the new node took to hold the primary's transactions.
type NodeCatchUp struct {
	Took   time.Duration
	Rounds int
}

// RegisterResult says what the registration did.
type RegisterResult struct {
	// Acks: the node acknowledges the primary's commits now.
	Acks bool
	// Note is a problem that did not fail the step (its semi-sync flag could not be set:
	// the detector's pass sets it).
	Note string `json:",omitempty"`
}

// UndoAttachResult says what became of a new node after a failed add.
type UndoAttachResult struct {
	// Detached: its replication is stopped and reset, and it is read-only. False when Consul
	// names it a member already (it is left as it is: `baton node remove` takes it out).
	Detached bool
	Note     string
}

// newNode is the node AddNodeInput describes: its address resolved to IPv4 (lookup, for a host
// name), no server_id yet. A problem is returned as a refusal's text.
func newNode(in AddNodeInput, lookup func(host string) ([]net.IP, error)) (topology.Node, error) {
	n := topology.Node{Name: in.Host, Zone: in.Zone}
	host, port, err := net.SplitHostPort(in.Addr)
	if err != nil {
		return n, fmt.Errorf("--addr %q is not host:port", in.Addr)
	}
	if n.Port, err = strconv.Atoi(port); err != nil || n.Port < 1 || n.Port > 65535 {
		return n, fmt.Errorf("--addr %q: %q is not a port", in.Addr, port)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.To4() == nil {
			return n, fmt.Errorf("--addr %q: Baton reaches nodes over IPv4; give an IPv4 address or a name that has one", in.Addr)
		}
		n.IPv4 = ip.To4().String()
		return n, nil
	}
	n.FQDN = host
	ips, err := lookup(host)
	for _, ip := range ips {
		if ip.To4() != nil && n.IPv4 == "" {
			n.IPv4 = ip.To4().String()
		}
	}
	if n.IPv4 == "" {
		return n, fmt.Errorf("--addr %q: %s has no IPv4 address (%v)", in.Addr, host, err)
	}
	return n, nil
}

// restoreFix is what to do about a new node that cannot follow the primary from where it is.
func restoreFix(n, primary topology.Node) string {
	return fmt.Sprintf("restore a backup of the primary %s onto %s first (with its GTID position: docs/runbook.md §3.2.3), then run `baton node add` again",
		primary.Name, n.Name)
}
