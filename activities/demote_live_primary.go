package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// DemoteLiveInput asks to take a primary that still answers out of service before a forced
// failover replaces it (`baton failover --force --primary-alive`: a sick primary).
type DemoteLiveInput struct {
	Cluster  string
	Primary  topology.Node
	Replicas []topology.Node
}

// DemoteLiveResult is what the demotion left behind.
type DemoteLiveResult struct {
	// Answered is false when the primary did not answer after all: the failover goes on
	// as for a dead one.
	Answered bool
	// GTIDs is what it had executed once fenced: nothing more can commit there, and the
	// candidate must hold all of it.
	GTIDs string `json:",omitempty"`
	// Ended is how many client sessions the fence ended.
	Ended int `json:",omitempty"`
	// Behind are the replicas that had not applied GTIDs within catchup_timeout.
	Behind []string `json:",omitempty"`
}

// DemoteLivePrimary fences a primary that still answers (semi-sync without fallback,
// read-only, client sessions ended), reads what it executed, and gives every replica
// catchup_timeout to apply it, so the candidate can be chosen among replicas that hold every
// write the primary ever acknowledged. It never reopens the primary; ReopenLivePrimary
// does, if the failover ends without a promotion.
func (a *Activities) DemoteLivePrimary(ctx context.Context, in DemoteLiveInput) (DemoteLiveResult, error) {
	cc, f, err := a.cluster(in.Cluster)
	if err != nil {
		return DemoteLiveResult{}, err
	}
	if err := a.answers(ctx, f, in.Primary); err != nil {
		return DemoteLiveResult{}, nil
	}
	c, err := a.freshClient(f, in.Primary, a.Config.Detector.ProbeTimeout, 5*time.Second)
	if err != nil {
		return DemoteLiveResult{}, err
	}
	defer c.Close()
	ended, err := c.Fence(ctx, a.excludedUsers())
	if err != nil {
		return DemoteLiveResult{}, nonRetryable(ErrUnreachable,
			"%s answers but could not be fenced (%v): nothing was promoted; stop its mysqld (it is then dead) and run `baton failover --cluster %s --force`",
			describe(in.Primary), err, in.Cluster)
	}
	res := DemoteLiveResult{Answered: true, Ended: ended}
	if res.GTIDs, err = c.Executed(ctx); err != nil {
		return res, err
	}
	heartbeat(ctx, fmt.Sprintf("%s fenced at %s", in.Primary.Name, res.GTIDs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range in.Replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := a.mysql(in.Cluster, r)
			if err == nil {
				err = rc.WaitExecuted(ctx, res.GTIDs, cc.CatchUpTimeout)
			}
			if err != nil {
				mu.Lock()
				res.Behind = append(res.Behind, fmt.Sprintf("%s: %v", r.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res, nil
}

// ReopenLivePrimary makes the primary DemoteLivePrimary fenced writable again after a
// forced failover that promoted nobody, as a switchover's undo does: only while Consul still
// names it and no failover revoked its lease.
func (a *Activities) ReopenLivePrimary(ctx context.Context, in DemoteLiveInput) (string, error) {
	plan := Plan{Cluster: in.Cluster, OldPrimary: in.Primary}
	if err := a.mayReopen(ctx, plan); err != nil {
		return "", err
	}
	c, err := a.mysql(in.Cluster, in.Primary)
	if err != nil {
		return "", err
	}
	if err := a.waitForAcks(ctx, in.Cluster, c, true); err != nil {
		return "", err
	}
	if err := a.fallbackBack(ctx, in.Cluster, c); err != nil { // the fence took it away
		return "", err
	}
	if err := c.SetReadOnly(ctx, false); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s is writable again: the forced failover promoted nobody", in.Primary.Name), nil
}
