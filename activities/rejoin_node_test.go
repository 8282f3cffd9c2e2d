package activities

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// fakeTopo is a Topology with one cluster's state that records readmissions, and a lease
// whose index moves on every write (onRead, if set, runs before each read of the lease).
type fakeTopo struct {
	t        topology.Topology
	readmits []string
	detached []string
	lease    *topology.Lease
	leaseIdx uint64
	onRead   func(f *fakeTopo)
	onAdmit  func()
}

func (f *fakeTopo) ReadLease(context.Context, string) (topology.Lease, uint64, error) {
	if f.onRead != nil {
		f.onRead(f)
	}
	if f.lease == nil {
		return topology.Lease{}, 0, nil
	}
	return *f.lease, f.leaseIdx, nil
}
func (f *fakeTopo) WriteLease(_ context.Context, _ string, l topology.Lease, index uint64) (uint64, error) {
	if index != f.leaseIdx {
		return 0, topology.ErrLeaseChanged
	}
	f.lease = &l
	f.leaseIdx++
	return f.leaseIdx, nil
}

func (f *fakeTopo) Read(context.Context, string) (topology.Topology, error) { return f.t, nil }
func (f *fakeTopo) Publish(context.Context, string, uint64, uint64, topology.Change) (uint64, error) {
	return 0, nil
}
func (f *fakeTopo) HAProxies(context.Context) ([]topology.HAProxyHost, error)       { return nil, nil }
func (f *fakeTopo) RecordResult(context.Context, string, topology.Record) error     { return nil }
func (f *fakeTopo) RecordEviction(context.Context, string, topology.Eviction) error { return nil }
func (f *fakeTopo) Recoveries(context.Context) (topology.Recoveries, error) {
	return topology.Recoveries{}, nil
}
func (f *fakeTopo) Detach(_ context.Context, _ string, _ uint64, e topology.Eviction) error {
	f.detached = append(f.detached, e.Node.Name)
	if f.onAdmit != nil {
		f.onAdmit()
	}
	return nil
}

func (f *fakeTopo) Readmit(_ context.Context, _ string, _ uint64, n topology.Node) error {
	f.readmits = append(f.readmits, n.Name)
	if f.onAdmit != nil {
		f.onAdmit()
	}
	return nil
}

// A node missing its own transactions asks for them from its binlog's position, and is
// readmitted only if it then holds them: MASTER_GTID_WAIT follows gtid_slave_pos, which a
// node that once skipped its own events has already past them, so the wait alone returns
// at once and proves nothing.
func TestRejoinProvesTheNodeHoldsItsOwnTransactions(t *testing.T) {
	old := tPrimary // node1, server_id 101, the crashed primary
	primary := &fakeServer{executed: "0-101-15,0-102-50"}
	for _, c := range []struct {
		name     string
		after    string // the node's executed set once the wait returned
		readmits bool
	}{
		{"the wait returned but its own 0-101-11..15 never arrived", "0-101-10,0-102-50", false},
		{"its own transactions arrived", "0-101-15,0-102-50", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			node := &fakeServer{executed: "0-101-10,0-102-50", status: &mysqladmin.ReplicaStatus{SourceHost: tCand.IPv4, SourcePort: tCand.Port, IORunning: "Yes", SQLRunning: true}}
			topo := &fakeTopo{t: topology.Topology{Cluster: "demo", Primary: tCand, Evicted: []topology.Eviction{{Node: old, Reason: "primary died: killed"}}}}
			a := fakeActivities(map[string]*fakeServer{old.Addr(): node, tCand.Addr(): primary})
			a.Topo = topo
			topo.onAdmit = func() { _ = node.record("readmitted") }
			node.onWait = func() { node.executed = c.after }
			_, err := a.RejoinNode(context.Background(), RejoinInput{Cluster: "demo", Host: old.Name})
			did := strings.Join(node.did, ",")
			if !strings.Contains(did, "point from binlog") {
				t.Fatalf("the node was not re-pointed from its binlog's position: %s", did)
			}
			if c.readmits {
				if err != nil || len(topo.readmits) != 1 {
					t.Fatalf("rejoin: %v, readmitted %v", err, topo.readmits)
				}
				// It acknowledges nothing until it is a member again (and so a candidate).
				if slices.Contains(node.pointAcks, true) {
					t.Fatalf("the rejoining node was pointed at the primary acknowledging: %v", node.pointAcks)
				}
				admitted := slices.Index(node.did, "readmitted")
				if admitted < 0 || slices.Index(node.did[admitted:], "acks") < 0 {
					t.Fatalf("semi-sync not turned on after the readmission: %s", did)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), ErrMissingOwnGTIDs) || !strings.Contains(err.Error(), "0-101-15") {
				t.Fatalf("rejoin of a node still missing its own 0-101-15: %v", err)
			}
			if len(topo.readmits) != 0 {
				t.Fatalf("a node missing its own transactions was readmitted")
			}
		})
	}
}
