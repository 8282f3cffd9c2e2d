package topology_test

import (
	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

var _ activities.Topology = (*topology.Store)(nil)
