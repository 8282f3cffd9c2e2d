package activities

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

func TestStoppedWithoutLease(t *testing.T) {
	for _, c := range []struct {
		f    FenceResult
		want string
	}{
		{FenceResult{Answered: true}, "fenced by Baton"},
		{FenceResult{Error: "dial tcp 127.0.1.1:3306: connect: connection refused"}, "mysqld is not running"},
		{FenceResult{Error: "dial tcp 127.0.1.1:3306: i/o timeout"}, ""},
		{FenceResult{}, ""},
	} {
		got := StoppedWithoutLease(c.f)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%+v: %q, want %q", c.f, got, c.want)
		}
	}
}

func TestLeaseVerdict(t *testing.T) {
	ttl := 2 * time.Second
	if _, done := leaseVerdict(topology.Lease{}, ttl-time.Millisecond, ttl); done {
		t.Fatal("a lease unchanged for less than its TTL is not expired")
	}
	if how, done := leaseVerdict(topology.Lease{}, ttl, ttl); !done || !strings.Contains(how, "expired") {
		t.Fatalf("a lease unchanged for its TTL is expired: %q %v", how, done)
	}
	if how, done := leaseVerdict(topology.Lease{Fenced: "read-only"}, 0, ttl); !done || !strings.Contains(how, "fenced by its agent: read-only") {
		t.Fatalf("the agent's answer ends the wait at once: %q %v", how, done)
	}
}

func TestNotHeldBy(t *testing.T) {
	l := topology.Lease{Node: "node1", Epoch: 7}
	for _, c := range []struct {
		idx   uint64
		node  string
		epoch uint64
		want  string
	}{
		{3, "node1", 7, ""},
		{0, "node1", 7, "no lease"},
		{3, "node2", 7, "node1's, not node2's"},
		{3, "node1", 8, "from epoch 7, not 8"},
	} {
		got := notHeldBy(l, c.idx, c.node, c.epoch)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%d %s %d: %q, want %q", c.idx, c.node, c.epoch, got, c.want)
		}
	}
}

// The failover revokes the old primary's lease and goes on when its agent answers; with no
// answer it waits the lease's TTL from the revocation, and a renewal it sees meanwhile
// starts that wait again.
func TestStopOldPrimaryWaitsForTheAgentOrTheTTL(t *testing.T) {
	plan := Plan{Cluster: "demo", OldPrimary: tPrimary, Epoch: 7}
	held := func() *topology.Lease { return &topology.Lease{Node: tPrimary.Name, Epoch: 7, TTLMillis: 300} }
	t.Run("the agent answers", func(t *testing.T) {
		topo := &fakeTopo{lease: held(), leaseIdx: 5}
		reads := 0
		topo.onRead = func(f *fakeTopo) {
			if reads++; reads == 3 && f.lease.Revoked != nil {
				f.lease.Fenced = "read-only, client sessions ended"
				f.leaseIdx++
			}
		}
		a := fakeActivities(nil)
		a.Topo = topo
		res, err := a.stopOldPrimary(context.Background(), StopInput{Plan: plan}, "failover test")
		if err != nil || !strings.Contains(res.How, "fenced by its agent") {
			t.Fatalf("%+v %v", res, err)
		}
		if topo.lease.Revoked == nil || topo.lease.Revoked.By != "failover test" {
			t.Fatalf("the lease was not revoked: %+v", topo.lease)
		}
		if res.Waited >= 300*time.Millisecond {
			t.Fatalf("waited %s for an agent that answered", res.Waited)
		}
	})
	t.Run("no answer: the TTL, restarted by a change", func(t *testing.T) {
		topo := &fakeTopo{lease: held(), leaseIdx: 5}
		reads := 0
		topo.onRead = func(f *fakeTopo) {
			if reads++; reads == 4 {
				f.leaseIdx++ // a write the failover did not make
			}
		}
		a := fakeActivities(nil)
		a.Topo = topo
		res, err := a.stopOldPrimary(context.Background(), StopInput{Plan: plan}, "failover test")
		if err != nil || !strings.Contains(res.How, "expired") {
			t.Fatalf("%+v %v", res, err)
		}
		if res.Waited < 300*time.Millisecond+2*leasePoll {
			t.Fatalf("waited %s: less than the TTL after the last change", res.Waited)
		}
	})
	t.Run("no lease, or another node's", func(t *testing.T) {
		for _, l := range []*topology.Lease{nil, {Node: "node3", Epoch: 7, TTLMillis: 300}} {
			topo := &fakeTopo{lease: l, leaseIdx: 5}
			if l == nil {
				topo.leaseIdx = 0
			}
			a := fakeActivities(nil)
			a.Topo = topo
			res, err := a.stopOldPrimary(context.Background(), StopInput{Plan: plan}, "failover test")
			if err != nil || !strings.Contains(res.How, "not known to be fenced") || res.Waited != 0 {
				t.Fatalf("%+v %v", res, err)
			}
		}
	})
	t.Run("no answer: the TTL counts from the end of the candidate's IO thread", func(t *testing.T) {
		// WaitRelayLog killed it; until it ends it reports itself connected to the old
		// primary, which the agent's failsafe takes for a whole cluster.
		topo := &fakeTopo{lease: held(), leaseIdx: 5}
		cand := &fakeServer{stopIO: 400 * time.Millisecond}
		a := fakeActivities(map[string]*fakeServer{tCand.Addr(): cand})
		a.Topo = topo
		p := plan
		p.Candidate = tCand
		res, err := a.stopOldPrimary(context.Background(), StopInput{Plan: p}, "failover test")
		if err != nil || !strings.Contains(res.How, "expired") {
			t.Fatalf("%+v %v", res, err)
		}
		if res.Waited < 700*time.Millisecond || !slices.Contains(cand.did, "stop io") {
			t.Fatalf("waited %s (the IO thread ended after 400ms, the TTL is 300ms); the candidate did %v", res.Waited, cand.did)
		}
	})
	t.Run("refused or fenced: no lease asked", func(t *testing.T) {
		topo := &fakeTopo{lease: held(), leaseIdx: 5}
		a := fakeActivities(nil)
		a.Topo = topo
		res, err := a.stopOldPrimary(context.Background(), StopInput{Plan: plan, Fence: FenceResult{Error: "connect: connection refused"}}, "x")
		if err != nil || !strings.Contains(res.How, "refused") || topo.lease.Revoked != nil {
			t.Fatalf("%+v %v %+v", res, err, topo.lease)
		}
	})
}

// The undo of a preempted switchover checks again at the moment it reopens the old primary:
// a failover that revoked its lease (it does so before it promotes) keeps it read-only.
func TestUndoNeverReopensAPrimaryWhoseLeaseWasRevoked(t *testing.T) {
	for _, c := range []struct {
		name    string
		revoked bool
	}{{"lease held", false}, {"lease revoked by a failover", true}} {
		t.Run(c.name, func(t *testing.T) {
			old := &fakeServer{executed: "0-101-9"}
			cand := &fakeServer{executed: "0-101-9", status: &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: tPrimary.Port, IORunning: "Yes", SQLRunning: true}}
			l := &topology.Lease{Node: tPrimary.Name, Epoch: 7, TTLMillis: 2000}
			if c.revoked {
				l.Revoked = &topology.Revocation{By: "failover failover/demo", At: time.Now()}
			}
			topo := &fakeTopo{t: topology.Topology{Cluster: "demo", Primary: tPrimary, Epoch: 7}, lease: l, leaseIdx: 3}
			a := fakeActivities(map[string]*fakeServer{tPrimary.Addr(): old, tCand.Addr(): cand})
			a.Topo = topo
			res, err := a.UndoDemotePrimary(context.Background(), Plan{Cluster: "demo", OldPrimary: tPrimary, Candidate: tCand, Epoch: 7})
			reopened := strings.Contains(strings.Join(old.did, ","), "read_only")
			if c.revoked {
				if err == nil || !strings.Contains(err.Error(), "revoked its lease") || reopened || res.Reopened != "" {
					t.Fatalf("reopened a primary whose lease a failover revoked: %+v %v %v", res, err, old.did)
				}
				return
			}
			if err != nil || !reopened || res.Reopened != tPrimary.Name {
				t.Fatalf("%+v %v %v", res, err, old.did)
			}
		})
	}
}
