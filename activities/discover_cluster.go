package activities

import (
	"context"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/onboard"
	"github.com/baton-db/baton/internal/topology"
)

// DiscoverClusterInput asks for a cluster's discovery from its primary.
type DiscoverClusterInput struct {
	Cluster      string
	Primary      string
	Flavor       string
	Names, Zones map[string]string
	DefaultZone  string `json:",omitempty"`
	// Prepared is what PrepareCluster did before, for the refusal's message.
	Prepared *PrepareResult `json:",omitempty"`
}

// Discovered is a cluster as discovery found it: what SeedCluster writes.
type Discovered struct {
	Flavor   string
	Primary  topology.Node
	Replicas []topology.Node
}

// DiscoverCluster reads the primary, finds its replicas and checks every node with the
// worker's accounts (onboard.Discover: each node's settings, Baton's replication and
// heartbeat accounts, replication). Any problem refuses the add (ErrCannotOnboard), every
// one named at once. It changes nothing.
func (a *Activities) DiscoverCluster(ctx context.Context, in DiscoverClusterInput) (Discovered, error) {
	out := Discovered{Flavor: in.Flavor}
	f, err := flavor.ByName(in.Flavor)
	if err != nil {
		return out, nonRetryable(ErrBadSettings, "cluster %s: flavor: %v", in.Cluster, err)
	}
	var users []string
	if a.Config != nil {
		for _, u := range []string{a.Config.Secrets.ReplUser, a.Config.Secrets.HeartbeatUser} {
			if u != "" {
				users = append(users, u)
			}
		}
	}
	req := onboard.Request{Cluster: in.Cluster, Primary: in.Primary, Names: in.Names, Zones: in.Zones, DefaultZone: in.DefaultZone, Users: users}
	stop := keepAlive(ctx, 5*time.Second)
	defer stop()
	out.Primary, out.Replicas, err = onboard.Discover(ctx, req, func(addr string) (onboard.Server, error) {
		return a.onboardServer(addr, f)
	})
	if err != nil {
		written := "nothing was written"
		if in.Prepared != nil {
			written = "nothing was written to Consul (the servers were " + in.Prepared.String() + ")"
		}
		return out, nonRetryable(ErrCannotOnboard, "cluster %s cannot be added; %s. Fix each of these and run the command again:\n  - %s",
			in.Cluster, written, strings.ReplaceAll(err.Error(), "\n", "\n  - "))
	}
	return out, nil
}
