// Package onboard discovers a cluster from its primary and checks that Baton can run it,
// for `baton cluster add`: nothing is ever written to Consul by hand.
package onboard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// Request is what `baton cluster add` was given.
type Request struct {
	Cluster string
	Primary string // host:port
	// Names and Zones map a node's address (host:port or host) to its name and zone.
	Names, Zones map[string]string
	// DefaultZone is the zone of a node Zones does not name ("" makes that a problem).
	DefaultZone string
	// Users are the accounts every node must have (replication, heartbeat).
	Users []string
}

// Server is what discovery reads of one node.
type Server interface {
	Ping(ctx context.Context) error
	OnboardingSettings(ctx context.Context) (mysqladmin.Onboarding, error)
	ReadOnly(ctx context.Context) (bool, bool, error)
	ReplicaStatus(ctx context.Context) (*mysqladmin.ReplicaStatus, error)
	ReplicaHosts(ctx context.Context) ([]mysqladmin.ReplicaHost, error)
	SemiSync(ctx context.Context) (mysqladmin.SemiSync, error)
	UserExists(ctx context.Context, user string) (bool, error)
	Close() error
}

// Dial opens a server by host:port.
type Dial func(addr string) (Server, error)

// Discover reads the primary, finds its replicas, checks every node and returns the
// topology to seed. Every problem found is returned at once, each naming its node and fix.
func Discover(ctx context.Context, req Request, dial Dial) (topology.Node, []topology.Node, error) {
	var problems []error
	add := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }
	p, err := dial(req.Primary)
	if err != nil {
		return topology.Node{}, nil, fmt.Errorf("primary %s: %w", req.Primary, err)
	}
	defer p.Close()
	if err := p.Ping(ctx); err != nil {
		return topology.Node{}, nil, fmt.Errorf("primary %s does not answer: %w", req.Primary, err)
	}
	primary, err := node(req, req.Primary, 0)
	if err != nil {
		problems = append(problems, err)
	}
	checkNode(ctx, req, p, &primary, true, nil, add)
	hosts, err := p.ReplicaHosts(ctx)
	if err != nil {
		add("primary %s: %v", req.Primary, err)
	}
	if err == nil && len(hosts) == 0 {
		add("primary %s lists no replicas: each replica must be connected and set report_host and report_port", req.Primary)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ServerID < hosts[j].ServerID })
	replicas := make([]topology.Node, len(hosts))
	var mu sync.Mutex
	locked := func(format string, a ...any) { mu.Lock(); defer mu.Unlock(); add(format, a...) }
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
			n, err := node(req, addr, h.ServerID)
			if err != nil {
				locked("%v", err)
			}
			r, err := dial(addr)
			if err != nil {
				locked("replica %s: %v", addr, err)
				replicas[i] = n
				return
			}
			defer r.Close()
			checkNode(ctx, req, r, &n, false, &primary, locked)
			replicas[i] = n
		}()
	}
	wg.Wait()
	seen := map[string]string{primary.Name: primary.Addr()}
	ids := map[uint32]string{primary.ServerID: primary.Addr()}
	for _, r := range replicas {
		if other, dup := seen[r.Name]; dup && r.Name != "" {
			add("replica %s: name %q is taken by %s; name it with --names %s=NAME", r.Addr(), r.Name, other, r.Addr())
		}
		if other, dup := ids[r.ServerID]; dup && r.ServerID != 0 {
			add("replica %s: server_id %d is also %s's; every server needs its own", r.Addr(), r.ServerID, other)
		}
		seen[r.Name], ids[r.ServerID] = r.Addr(), r.Addr()
	}
	return primary, replicas, errors.Join(problems...)
}

// node builds a node from its address and the names and zones given.
func node(req Request, addr string, serverID uint32) (topology.Node, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return topology.Node{}, fmt.Errorf("%q is not host:port", addr)
	}
	n := topology.Node{ServerID: serverID}
	n.Port, _ = strconv.Atoi(port)
	if ip := net.ParseIP(host); ip != nil {
		n.IPv4 = ip.String()
	} else {
		n.FQDN = host
		ips, err := net.LookupIP(host)
		for _, ip := range ips {
			if ip.To4() != nil && n.IPv4 == "" {
				n.IPv4 = ip.String()
			}
		}
		if err != nil || n.IPv4 == "" {
			return n, fmt.Errorf("node %s: %s has no IPv4 address (%v)", addr, host, err)
		}
	}
	n.Name = lookup(req.Names, addr, host)
	n.Zone = lookup(req.Zones, addr, host)
	if n.Zone == "" {
		n.Zone = req.DefaultZone
	}
	var problems []error
	if n.Name == "" {
		problems = append(problems, fmt.Errorf("node %s: no name; give one with --names %s=NAME", addr, addr))
	}
	if n.Zone == "" {
		problems = append(problems, fmt.Errorf("node %s: no zone; give one with --zones %s=ZONE (or --default-zone)", addr, addr))
	}
	return n, errors.Join(problems...)
}

func lookup(m map[string]string, addr, host string) string {
	if v, ok := m[addr]; ok {
		return v
	}
	return m[host]
}

// checkNode reads one node and reports what Baton needs and it lacks.
func checkNode(ctx context.Context, req Request, s Server, n *topology.Node, isPrimary bool, primary *topology.Node, add func(string, ...any)) {
	role := "replica"
	if isPrimary {
		role = "primary"
	}
	where := role + " " + n.Addr()
	o, err := s.OnboardingSettings(ctx)
	if err != nil {
		add("%s: %v", where, err)
		return
	}
	if n.ServerID == 0 {
		n.ServerID = o.ServerID
	}
	if o.ServerID != n.ServerID {
		add("%s: the primary lists server_id %d, the server says %d", where, n.ServerID, o.ServerID)
	}
	if !o.GTIDEnforced {
		add("%s: GTIDs are not enforced; set gtid_strict_mode=ON (MariaDB) or gtid_mode=ON and enforce_gtid_consistency=ON (MySQL)", where)
	}
	if !o.LogReplicaUpdates {
		add("%s: log_slave_updates/log_replica_updates is OFF; a replica that cannot be a source cannot be promoted", where)
	}
	if _, err := s.SemiSync(ctx); err != nil {
		add("%s: semi-sync is not available (%v); load the semi-sync plugins (MySQL) or check rpl_semi_sync_* (MariaDB)", where, err)
	}
	ro, _, err := s.ReadOnly(ctx)
	switch {
	case err != nil:
		add("%s: %v", where, err)
	case isPrimary && ro:
		add("%s: read_only is ON; the primary must be writable", where)
	case !isPrimary && !ro:
		add("%s: read_only is OFF; a replica must be read-only (a write there is an errant GTID)", where)
	}
	for _, u := range req.Users {
		if ok, err := s.UserExists(ctx, u); err != nil {
			add("%s: %v", where, err)
		} else if !ok {
			add("%s: account %q does not exist; create it (docs/runbook.md lists each account's grants)", where, u)
		}
	}
	if isPrimary {
		return
	}
	st, err := s.ReplicaStatus(ctx)
	switch {
	case err != nil:
		add("%s: %v", where, err)
	case st == nil:
		add("%s: not a replica", where)
	case st.SourcePort != primary.Port || !sameHost(st.SourceHost, primary.IPv4):
		add("%s: replicates from %s:%d, not from the primary %s", where, st.SourceHost, st.SourcePort, primary.Addr())
	case st.IORunning != "Yes" || !st.SQLRunning:
		add("%s: replication is not running (IO %s, SQL %v: %s%s)", where, st.IORunning, st.SQLRunning, st.IOError, st.SQLError)
	}
}

func sameHost(host, ip string) bool {
	if host == ip {
		return true
	}
	addrs, err := net.LookupHost(host)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a == ip {
			return true
		}
	}
	return false
}
