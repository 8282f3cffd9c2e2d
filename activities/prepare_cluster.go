package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/onboard"
)

// PrepareClusterInput readies new servers for the cluster: Init opens the primary, Attach
// makes servers its replicas (acknowledging its commits as the settings' durability says).
type PrepareClusterInput struct {
	Cluster  string
	Primary  string
	Init     bool     `json:",omitempty"`
	Attach   []string `json:",omitempty"`
	Zones    map[string]string
	Settings map[string]any
}

// PrepareResult says what PrepareCluster did.
type PrepareResult struct {
	Primary  string
	Opened   bool
	Attached int
}

// String is the line `baton cluster add` prints.
func (p PrepareResult) String() string {
	opened := ""
	if p.Opened {
		opened = " opened"
	}
	return fmt.Sprintf("prepared: primary %s%s, %d server(s) attached", p.Primary, opened, p.Attached)
}

// PrepareCluster readies new servers before discovery (`cluster add --init --attach`):
// onboard.Prepare with the worker's admin and replication accounts. A server already
// replicating from the primary is left as it is, so it can run again.
func (a *Activities) PrepareCluster(ctx context.Context, in PrepareClusterInput) (PrepareResult, error) {
	out := PrepareResult{Primary: in.Primary, Opened: in.Init, Attached: len(in.Attach)}
	cc, f, err := decodeNew(in.Cluster, in.Settings)
	if err != nil {
		return out, err
	}
	p, err := a.onboardServer(in.Primary, f)
	if err != nil {
		return out, fmt.Errorf("cluster %s: %w", in.Cluster, err)
	}
	defer p.Close()
	servers := map[string]onboard.Admin{}
	for _, addr := range in.Attach {
		c, err := a.onboardServer(addr, f)
		if err != nil {
			return out, fmt.Errorf("cluster %s: %w", in.Cluster, err)
		}
		defer c.Close()
		servers[addr] = c
	}
	zone := func(addr string) string {
		if z, ok := in.Zones[addr]; ok {
			return z
		}
		host, _, _ := strings.Cut(addr, ":")
		return in.Zones[host]
	}
	acks := func(addr string) bool { return cc.Acks(zone(in.Primary), zone(addr)) }
	stop := keepAlive(ctx, 5*time.Second)
	defer stop()
	if err := onboard.Prepare(ctx, p, in.Primary, in.Init, servers, a.Config.ReplicationSource, acks); err != nil {
		return out, fmt.Errorf("cluster %s: %w", in.Cluster, err)
	}
	return out, nil
}
