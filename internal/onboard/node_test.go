package onboard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// A server to be added to a running cluster gets the settings and account checks of every
// replica, and nothing of what only a replica already has: writable and replicating from
// nowhere is fine (node add makes it read-only and attaches it).
func TestNewReplicaRunsTheReplicaChecksButTheRole(t *testing.T) {
	n := topology.Node{Name: "db6", IPv4: "10.0.0.6", Port: 3306, Zone: "a", ServerID: 99}
	good := mysqladmin.Onboarding{ServerID: 6, GTIDEnforced: true, LogReplicaUpdates: true}
	got, problems := NewReplica(context.Background(), &fake{o: good, users: []string{"repl", "heartbeat"}}, n, []string{"repl", "heartbeat"})
	if len(problems) != 0 || got.ServerID != 6 || got.Name != "db6" || got.Zone != "a" {
		t.Fatalf("%+v: %v", got, problems)
	}
	bad := mysqladmin.Onboarding{ServerID: 6, GTIDEnforced: false, LogReplicaUpdates: false}
	_, problems = NewReplica(context.Background(), &fake{o: bad, users: []string{"repl"}, noSemi: true, ro: true,
		st: &mysqladmin.ReplicaStatus{SourceHost: "10.0.0.9", SourcePort: 3306}}, n, []string{"repl", "heartbeat"})
	all := errors.Join(problems...).Error()
	for _, want := range []string{"GTIDs are not enforced", "log_slave_updates", "semi-sync is not available", `account "heartbeat" does not exist`} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "replicates from") || strings.Contains(all, "read_only") {
		t.Errorf("the role's checks ran on a server to be added:\n%s", all)
	}
}
