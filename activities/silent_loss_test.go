package activities

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// A replica that received transactions the new primary lacks is not re-pointed: the
// re-point would throw its relay log away, and they may be acknowledged writes.
func TestReparentLeavesAReplicaThatHoldsWhatTheNewPrimaryLacks(t *testing.T) {
	newPrimary := &fakeServer{executed: "0-101-20"}
	behind := &fakeServer{executed: "0-101-18", status: &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, Received: "0-101-18"}}
	ahead := &fakeServer{executed: "0-101-20", status: &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, Received: "0-101-25"}}
	n3 := topology.Node{Name: "node3", IPv4: "127.0.1.3", Port: 3306, Zone: "a", ServerID: 103}
	a := fakeActivities(map[string]*fakeServer{tCand.Addr(): newPrimary, n3.Addr(): ahead, tPrimary.Addr(): behind})
	_, err := a.ReparentReplica(context.Background(), ReparentInput{Cluster: "demo", Node: n3, Primary: tCand})
	if err == nil || !strings.Contains(err.Error(), "0-101-25") || !strings.Contains(err.Error(), ErrWouldDiscard) {
		t.Fatalf("re-pointing a replica that received 0-101-25, which the new primary lacks: %v", err)
	}
	if strings.Contains(strings.Join(ahead.did, ","), "point") {
		t.Fatalf("the replica was re-pointed anyway: %v", ahead.did)
	}
	// One that holds nothing more is re-pointed.
	if err := a.wouldDiscard(context.Background(), ReparentInput{Cluster: "demo", Node: tPrimary, Primary: tCand}, behind, behind.status); err != nil {
		t.Fatalf("a replica behind the new primary: %v", err)
	}
}

// Under cross_zone, a replica in another zone than the dead primary may be the only
// acker: one that does not answer is asked again for unreachable_acker_wait, and if the
// failover promotes without it the plan says acknowledged writes may be missing. An
// unreachable zone mate (never an acker) is not waited for.
func TestUnreachableAckerIsAskedAgainAndReported(t *testing.T) {
	mate := &fakeServer{executed: "0-101-20", status: &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, SQLRunning: true, Received: "0-101-20"}}
	gone := &fakeServer{down: true}
	ackerNode := topology.Node{Name: "node2", IPv4: "127.0.1.2", Port: 3306, Zone: "b", ServerID: 102}
	mateNode := topology.Node{Name: "node3", IPv4: "127.0.1.3", Port: 3306, Zone: "a", ServerID: 103}
	for _, c := range []struct {
		name       string
		durability config.Durability
	}{{"cross_zone: the other zone's replica acks", config.DurabilityCrossZone}, {"semi_sync: any replica acks", config.DurabilitySemiSync}} {
		t.Run(c.name, func(t *testing.T) {
			a := fakeActivities(map[string]*fakeServer{ackerNode.Addr(): gone, mateNode.Addr(): mate})
			cc := a.Config.Clusters["demo"]
			cc.Durability, cc.UnreachableAckerWait = c.durability, 300*time.Millisecond
			a.Config.Clusters["demo"] = cc
			start := time.Now()
			plan, err := a.ChooseCandidate(context.Background(), ConfirmResult{Cluster: "demo", Primary: tPrimary, Replicas: []topology.Node{ackerNode, mateNode}, Epoch: 7})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < 300*time.Millisecond {
				t.Fatalf("the unreachable acker was not asked again for unreachable_acker_wait (took %s)", took)
			}
			left := strings.Join(plan.LeftBehind, "\n")
			if plan.Candidate.Name != "node3" || !strings.Contains(left, "node2") || !strings.Contains(left, "may hold acknowledged writes") {
				t.Fatalf("candidate %s, left behind %q; want node3 with node2 named as a possible holder of acknowledged writes", plan.Candidate.Name, left)
			}
		})
	}
	t.Run("cross_zone: an unreachable zone mate is no acker", func(t *testing.T) {
		other := &fakeServer{executed: "0-101-20", status: &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, SQLRunning: true, Received: "0-101-20"}}
		a := fakeActivities(map[string]*fakeServer{ackerNode.Addr(): other, mateNode.Addr(): gone})
		cc := a.Config.Clusters["demo"]
		cc.Durability, cc.UnreachableAckerWait = config.DurabilityCrossZone, 5*time.Second
		a.Config.Clusters["demo"] = cc
		start := time.Now()
		plan, err := a.ChooseCandidate(context.Background(), ConfirmResult{Cluster: "demo", Primary: tPrimary, Replicas: []topology.Node{ackerNode, mateNode}, Epoch: 7})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 3*time.Second || len(plan.LeftBehind) != 0 || plan.Candidate.Name != "node2" {
			t.Fatalf("took %s, candidate %s, left behind %v; want node2 at once and nothing reported", took, plan.Candidate.Name, plan.LeftBehind)
		}
	})
}
