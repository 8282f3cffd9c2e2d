package onboard

import (
	"context"
	"fmt"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// NewReplica runs on a server that is to join a running cluster (`baton node add`) the
// checks Discover runs on every replica (checkNode, not a copy of it): its server_id,
// GTIDs enforced, log_slave_updates, semi-sync available, and the accounts users. What
// only a replica already has is not asked of it (read_only on, replication from the
// primary running): `node add` makes it read-only and attaches it, and decides itself
// what its replication and read_only may be beforehand. It returns n with the server_id
// the server reports (0 when its settings could not be read) and every problem found.
func NewReplica(ctx context.Context, s Server, n topology.Node, users []string) (topology.Node, []error) {
	var problems []error
	add := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }
	n.ServerID = 0 // read from the server
	checkNode(ctx, Request{Users: users}, toBe{Server: s, self: n}, &n, false, &n, add)
	return n, problems
}

// toBe is a server as checkNode sees a replica-to-be: read-only, and replicating from the
// address it is given as its primary (itself), so that only the settings and accounts are
// judged.
type toBe struct {
	Server
	self topology.Node
}

func (toBe) ReadOnly(context.Context) (bool, bool, error) { return true, false, nil }

func (s toBe) ReplicaStatus(context.Context) (*mysqladmin.ReplicaStatus, error) {
	return &mysqladmin.ReplicaStatus{SourceHost: s.self.IPv4, SourcePort: s.self.Port, IORunning: "Yes", SQLRunning: true}, nil
}
