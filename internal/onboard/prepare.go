package onboard

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
)

// Admin is what preparing a new cluster does to a server.
type Admin interface {
	Server
	SetReadOnly(ctx context.Context, on bool) error
	SetSemiSyncPrimary(ctx context.Context, on bool) error
	PointAt(ctx context.Context, src flavor.Source, wasPrimary, acks bool) error
	CreateHeartbeatSchema(ctx context.Context) error
}

// Prepare readies new servers for `baton cluster add --init --attach`: the primary
// writable with semi-sync and Baton's heartbeat schema (init), and every attached server
// read-only and replicating from it with GTIDs, acknowledging its commits when acks says
// so. A server already replicating from the primary is left as it is, so it can run again.
func Prepare(ctx context.Context, primary Admin, primaryAddr string, init bool, attach map[string]Admin,
	src func(host string, port int) flavor.Source, acks func(addr string) bool) error {
	host, port, err := hostPort(primaryAddr)
	if err != nil {
		return err
	}
	if init { // writable first (a super_read_only server refuses even the admin), semi-sync last
		if err := primary.SetReadOnly(ctx, false); err != nil {
			return fmt.Errorf("primary %s: read_only off: %w", primaryAddr, err)
		}
		if err := primary.CreateHeartbeatSchema(ctx); err != nil {
			return fmt.Errorf("primary %s: create the heartbeat schema: %w", primaryAddr, err)
		}
		if err := primary.SetSemiSyncPrimary(ctx, true); err != nil {
			return fmt.Errorf("primary %s: semi-sync: %w", primaryAddr, err)
		}
	}
	for addr, r := range attach {
		st, err := r.ReplicaStatus(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		if st != nil && st.SourcePort == port && sameHost(st.SourceHost, host) && st.IORunning == "Yes" {
			continue
		}
		if err := r.SetReadOnly(ctx, true); err != nil {
			return fmt.Errorf("%s: read_only on: %w", addr, err)
		}
		if err := r.PointAt(ctx, src(host, port), false, acks(addr)); err != nil {
			return fmt.Errorf("%s: replicate from %s: %w", addr, primaryAddr, err)
		}
	}
	// Discovery needs every replica connected (the primary lists it only then).
	deadline := time.Now().Add(15 * time.Second)
	for {
		hosts, err := primary.ReplicaHosts(ctx)
		if err == nil && len(hosts) >= len(attach) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("primary %s lists %d of the %d attached replicas after 15 s (%v); check their replication status", primaryAddr, len(hosts), len(attach), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func hostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	if ips, err := net.LookupIP(host); err == nil && net.ParseIP(host) == nil {
		for _, ip := range ips {
			if ip.To4() != nil {
				return ip.String(), port, nil
			}
		}
	}
	return host, port, nil
}

var _ Admin = (*mysqladmin.Client)(nil)
