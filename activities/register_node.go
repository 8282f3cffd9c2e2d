package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/baton-db/baton/internal/topology"
)

// RegisterNode makes a caught-up new node a member: Consul's replicas/<name>, written with
// CAS on the epoch read at the check (topology's Readmit: one transaction, which also drops
// an eviction record of that name, and there is none), so the remote HAProxies' reader pools
// take it and every later choice counts it. A change of primary since the check refuses it
// (the workflow undoes the attach). Once it is a member, its semi-sync flag follows the
// durability policy, and the primary waits for acknowledgements again if it is the
// replica that may give them (RejoinNode's rule). A retry after a registration whose
// answer was lost finds it registered and goes on.
func (a *Activities) RegisterNode(ctx context.Context, p NewNodePlan) (RegisterResult, error) {
	t, err := a.Topo.Read(ctx, p.Cluster)
	if err != nil {
		return RegisterResult{}, err
	}
	if m, ok := t.Find(p.Node.Name); !ok || m != p.Node {
		if err := a.samePrimary(ctx, p); err != nil {
			return RegisterResult{}, err
		}
		if _, problems := newNodeProblems(newNodeFacts{Topo: t, Node: p.Node}); len(problems) > 0 {
			return RegisterResult{}, nonRetryable(ErrNodeRefused, "%s cannot be registered in %s: %s", p.Node.Name, p.Cluster, strings.Join(problems, "; "))
		}
		c, err := a.mysql(p.Cluster, p.Node)
		if err != nil {
			return RegisterResult{}, err
		}
		st, err := c.ReplicaStatus(ctx)
		if err != nil {
			return RegisterResult{}, err
		}
		if err := attachVerdict(p.Node, p.Primary, st); err != nil {
			return RegisterResult{}, err // it broke since it caught up: not a member
		}
		faultPoint(ctx, "register")
		if err := a.Topo.Readmit(ctx, p.Cluster, p.EpochIndex, p.Node); err != nil {
			if errors.Is(err, topology.ErrConflict) {
				return RegisterResult{}, nonRetryable(ErrEpochChanged, "the primary of %s changed while %s caught up (%v): it follows %s, which may be a primary no more; run `baton node add` again",
					p.Cluster, p.Node.Name, err, p.Primary.Name)
			}
			return RegisterResult{}, err
		}
		logger(ctx).Info("new node registered", "node", p.Node.Name, "cluster", p.Cluster, "zone", p.Node.Zone, "primary", p.Primary.Name)
	}
	if !p.Acks {
		return RegisterResult{}, nil
	}
	// A member now, and so a candidate: it may acknowledge.
	res := RegisterResult{Acks: true}
	c, err := a.mysql(p.Cluster, p.Node)
	if err == nil {
		err = c.SetAcks(ctx, true)
	}
	if err != nil { // registered: the detector's acks pass sets it right later
		res.Acks, res.Note = false, fmt.Sprintf("%s does not acknowledge yet (%v): the detector sets its flag", p.Node.Name, err)
		logger(ctx).Warn("registered, but it does not acknowledge yet", "node", p.Node.Name, "error", err)
		return res, nil
	}
	pc, err := a.mysql(p.Cluster, p.Primary)
	if err != nil {
		return res, err
	}
	if err := a.waitForAcks(ctx, p.Cluster, pc, true); err != nil {
		return res, fmt.Errorf("%s is registered, but primary %s: %w", p.Node.Name, p.Primary.Name, err)
	}
	return res, nil
}
