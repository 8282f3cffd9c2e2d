package onboard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/baton-db/baton/internal/mysqladmin"
)

type fake struct {
	o        mysqladmin.Onboarding
	ro       bool
	st       *mysqladmin.ReplicaStatus
	replicas []mysqladmin.ReplicaHost
	users    []string
	noSemi   bool
}

func (f *fake) Ping(context.Context) error { return nil }
func (f *fake) OnboardingSettings(context.Context) (mysqladmin.Onboarding, error) {
	return f.o, nil
}
func (f *fake) ReadOnly(context.Context) (bool, bool, error) { return f.ro, false, nil }
func (f *fake) ReplicaStatus(context.Context) (*mysqladmin.ReplicaStatus, error) {
	return f.st, nil
}
func (f *fake) ReplicaHosts(context.Context) ([]mysqladmin.ReplicaHost, error) {
	return f.replicas, nil
}
func (f *fake) SemiSync(context.Context) (mysqladmin.SemiSync, error) {
	if f.noSemi {
		return mysqladmin.SemiSync{}, errors.New("Unknown system variable 'rpl_semi_sync_master_enabled'")
	}
	return mysqladmin.SemiSync{}, nil
}
func (f *fake) UserExists(_ context.Context, u string) (bool, error) {
	for _, x := range f.users {
		if x == u {
			return true, nil
		}
	}
	return false, nil
}
func (f *fake) Close() error { return nil }

func servers() map[string]*fake {
	good := mysqladmin.Onboarding{GTIDEnforced: true, LogReplicaUpdates: true}
	users := []string{"repl", "heartbeat"}
	running := func(host string) *mysqladmin.ReplicaStatus {
		return &mysqladmin.ReplicaStatus{SourceHost: host, SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
	}
	with := func(o mysqladmin.Onboarding, id uint32) mysqladmin.Onboarding { o.ServerID = id; return o }
	return map[string]*fake{
		"10.0.0.1:3306": {o: with(good, 1), users: users,
			replicas: []mysqladmin.ReplicaHost{{ServerID: 2, Host: "10.0.0.2", Port: 3306}, {ServerID: 3, Host: "10.0.0.3", Port: 3306}}},
		"10.0.0.2:3306": {o: with(good, 2), ro: true, users: users, st: running("10.0.0.1")},
		"10.0.0.3:3306": {o: with(good, 3), ro: true, users: users, st: running("10.0.0.1")},
	}
}

func request() Request {
	return Request{Cluster: "c1", Primary: "10.0.0.1:3306", Users: []string{"repl", "heartbeat"}, DefaultZone: "a",
		Names: map[string]string{"10.0.0.1": "db1", "10.0.0.2": "db2", "10.0.0.3:3306": "db3"}, Zones: map[string]string{"10.0.0.2": "b"}}
}

func dialer(s map[string]*fake) Dial {
	return func(addr string) (Server, error) {
		if f, ok := s[addr]; ok {
			return f, nil
		}
		return nil, errors.New("connection refused")
	}
}

func TestDiscoverFindsTheReplicas(t *testing.T) {
	p, reps, err := Discover(context.Background(), request(), dialer(servers()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "db1" || p.ServerID != 1 || p.Zone != "a" || len(reps) != 2 || reps[0].Name != "db2" || reps[0].Zone != "b" || reps[1].Name != "db3" || reps[1].ServerID != 3 {
		t.Fatalf("primary %+v replicas %+v", p, reps)
	}
}

func TestDiscoverReportsEveryProblemAtOnce(t *testing.T) {
	s := servers()
	s["10.0.0.1:3306"].ro = true
	s["10.0.0.1:3306"].noSemi = true
	s["10.0.0.2:3306"].o.GTIDEnforced = false
	s["10.0.0.2:3306"].st.SourceHost = "10.0.0.9"
	s["10.0.0.3:3306"].ro = false
	s["10.0.0.3:3306"].users = []string{"repl"}
	req := request()
	delete(req.Names, "10.0.0.3:3306")
	_, _, err := Discover(context.Background(), req, dialer(s))
	if err == nil {
		t.Fatal("no problems reported")
	}
	for _, want := range []string{
		"primary 10.0.0.1:3306: read_only is ON",
		"primary 10.0.0.1:3306: semi-sync is not available",
		"replica 10.0.0.2:3306: GTIDs are not enforced",
		"replica 10.0.0.2:3306: replicates from 10.0.0.9:3306, not from the primary 10.0.0.1:3306",
		"replica 10.0.0.3:3306: read_only is OFF",
		`replica 10.0.0.3:3306: account "heartbeat" does not exist`,
		"node 10.0.0.3:3306: no name; give one with --names 10.0.0.3:3306=NAME",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
}
