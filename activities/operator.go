package activities

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/fleet"
	"github.com/baton-db/baton/internal/topology"
)

// The operator's verbs, run on the worker (workflows Inspect and Operate) so that the CLI
// needs only its Temporal connection: the reads of `baton status`, the dry runs and
// `baton recoveries`, and the Consul writes of `baton downtime`, `ack` and `recoveries`.
// Every result carries names, addresses, GTIDs and who did what: never a secret.

// OperatorStore is what the operator's verbs need of Consul beyond Topology: the
// production store (*topology.Store) has all of it.
type OperatorStore interface {
	Topology
	Clusters(ctx context.Context) ([]string, error)
	SetDowntime(ctx context.Context, cluster string, d topology.Downtime) error
	EndDowntime(ctx context.Context, cluster, node string) error
	Acknowledge(ctx context.Context, cluster string, a topology.Ack) error
	SetRecoveries(ctx context.Context, r topology.Recoveries) error
	SetClusterRecoveries(ctx context.Context, cluster string, r topology.Recoveries) error
	SetPromotion(ctx context.Context, cluster string, r topology.Promotion) error
}

func (a *Activities) operatorStore() (OperatorStore, error) {
	s, ok := a.Topo.(OperatorStore)
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError("the worker's topology store cannot serve the operator's verbs", ErrBadConfig, nil)
	}
	return s, nil
}

// unknownIsRefused makes an unknown cluster a non-retryable refusal (ErrUnknownCluster).
func unknownIsRefused(err error) error {
	if errors.Is(err, topology.ErrUnknownCluster) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrUnknownCluster, nil)
	}
	return err
}

// StatusInput asks for `baton status`: one cluster, or every one when Cluster is empty.
type StatusInput struct{ Cluster string }

// StatusReport is what `baton status` shows (the CLI adds each cluster's open workflow).
type StatusReport struct {
	At         time.Time           `json:"at"`
	Recoveries topology.Recoveries `json:"recoveries"`
	Clusters   []ClusterStatus     `json:"clusters"`
}

// ClusterStatus is one cluster of a StatusReport.
type ClusterStatus struct {
	Health
	// WatchedBy is the detector that holds the cluster's lock ("" when none does).
	WatchedBy string `json:"watched_by"`
	// Error: the cluster could not be read at all.
	Error string `json:"error,omitempty"`
}

// Status reads every cluster Consul or the config knows (or just one), in parallel: the
// topology, the detector watching it, the HAProxy hosts, and every node (inspect). It
// changes nothing. A cluster that is not configured is refused (ErrUnknownCluster).
func (a *Activities) Status(ctx context.Context, in StatusInput) (StatusReport, error) {
	r := StatusReport{At: time.Now().UTC()}
	s, err := a.operatorStore()
	if err != nil {
		return r, err
	}
	if in.Cluster != "" {
		if _, err := a.clusterConfig(in.Cluster); err != nil {
			return r, temporal.NewNonRetryableApplicationError(err.Error(), ErrUnknownCluster, nil)
		}
	}
	if r.Recoveries, err = s.Recoveries(ctx); err != nil {
		return r, err
	}
	names := []string{in.Cluster}
	if in.Cluster == "" {
		if names, err = s.Clusters(ctx); err != nil {
			return r, err
		}
		for _, n := range a.clusterNames() {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
	}
	hosts, hostsErr := s.HAProxies(ctx)
	watchers, werr := a.watchers(ctx, names)
	r.Clusters = make([]ClusterStatus, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cs := ClusterStatus{Health: Health{Cluster: n}, WatchedBy: watchers[n]}
			t, err := s.Read(ctx, n)
			if err != nil {
				cs.Error = err.Error()
				if errors.Is(err, topology.ErrUnknownCluster) {
					cs.Error += " (onboard it with `baton cluster add`)"
				}
				cs.Problems = []string{cs.Error}
			} else {
				cs.Health = a.inspect(ctx, t, hosts, hostsErr)
			}
			if slices.Contains(a.clusterNames(), n) && cs.WatchedBy == "" {
				what := "no detector watches it: is baton-detector running?"
				if werr != nil {
					what = "which detector watches it is unknown: " + werr.Error()
				}
				cs.Problems = append(cs.Problems, what)
			}
			r.Clusters[i] = cs
		}()
	}
	wg.Wait()
	return r, nil
}

// watchers names the detector that watches each cluster: Watchers when set (tests), else
// the fleet's locks in Consul.
func (a *Activities) watchers(ctx context.Context, names []string) (map[string]string, error) {
	if a.Watchers != nil {
		return a.Watchers(ctx, names)
	}
	st, ok := a.Topo.(*topology.Store)
	if !ok {
		return nil, errors.New("no detector fleet to ask")
	}
	return fleet.Watchers(ctx, st.Client(), app.FleetPrefix(a.Config), names)
}

// CurrentEpoch reads a configured cluster's epoch in Consul: what `baton approve` and
// `baton abort` saw. It changes nothing.
func (a *Activities) CurrentEpoch(ctx context.Context, cluster string) (uint64, error) {
	if _, err := a.clusterConfig(cluster); err != nil {
		return 0, temporal.NewNonRetryableApplicationError(err.Error(), ErrUnknownCluster, nil)
	}
	t, err := a.Topo.Read(ctx, cluster)
	if err != nil {
		return 0, unknownIsRefused(err)
	}
	return t.Epoch, nil
}

// Refusal is an error carried in a preview's result, so that the plan found before it is
// shown too: its temporal.ApplicationError type ("" for any other error) and message.
type Refusal struct {
	Type    string
	Message string
}

func refusalOf(err error) *Refusal {
	if err == nil {
		return nil
	}
	r := &Refusal{Message: err.Error()}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		r.Type = app.Type()
	}
	return r
}

// Preview is a plan and, when the operation would be refused, why.
type Preview struct {
	Plan    Plan
	Refusal *Refusal `json:",omitempty"`
}

// PreviewSwitchover is CheckPreconditions for `baton switchover --dry-run`: the plan and
// every check, with the refusal in the result instead of an error. It changes nothing.
func (a *Activities) PreviewSwitchover(ctx context.Context, in CheckInput) (Preview, error) {
	p, err := a.CheckPreconditions(ctx, in)
	return Preview{Plan: p, Refusal: refusalOf(err)}, nil
}

// PreviewFailoverCandidate is previewCandidate for `baton failover --dry-run`: the
// candidate an unplanned failover would choose, without waiting for or changing any replica.
func (a *Activities) PreviewFailoverCandidate(ctx context.Context, c ConfirmResult) (Preview, error) {
	p, err := a.previewCandidate(ctx, c)
	return Preview{Plan: p, Refusal: refusalOf(err)}, nil
}

// RecoveriesView is `baton recoveries` (and its -o json).
type RecoveriesView struct {
	// Enabled: automatic failover is on (for the cluster, when one is named).
	Enabled bool                `json:"enabled"`
	Global  topology.Recoveries `json:"global"`
	Cluster string              `json:"cluster,omitempty"`
	// ClusterSwitch is the cluster's own switch, when it has one.
	ClusterSwitch *topology.Recoveries `json:"cluster_switch,omitempty"`
}

// ShowRecoveries reads the global switch of automatic failover and, with a cluster, its
// own. It changes nothing.
func (a *Activities) ShowRecoveries(ctx context.Context, cluster string) (RecoveriesView, error) {
	r, err := a.Topo.Recoveries(ctx)
	if err != nil {
		return RecoveriesView{}, err
	}
	v := RecoveriesView{Enabled: !r.Disabled, Global: r, Cluster: cluster}
	if cluster != "" {
		t, err := a.Topo.Read(ctx, cluster)
		if err != nil {
			return v, unknownIsRefused(err)
		}
		v.ClusterSwitch = t.Recoveries
		v.Enabled = v.Enabled && (t.Recoveries == nil || !t.Recoveries.Disabled)
	}
	return v, nil
}

// RecoveriesInput switches automatic failover off or on, for every cluster or for one.
type RecoveriesInput struct {
	Cluster  string // empty: the global switch
	Disabled bool
	By       string
	Reason   string
}

// SetRecoveries writes a switch of automatic failover and returns what it now is. An
// unknown cluster is refused; any other read problem (a malformed switch among them) does
// not stop a human from setting it.
func (a *Activities) SetRecoveries(ctx context.Context, in RecoveriesInput) (RecoveriesView, error) {
	s, err := a.operatorStore()
	if err != nil {
		return RecoveriesView{}, err
	}
	r := topology.Recoveries{Disabled: in.Disabled, By: in.By, Reason: in.Reason, At: time.Now().UTC()}
	if in.Cluster == "" {
		err = s.SetRecoveries(ctx, r)
	} else if _, err = s.Read(ctx, in.Cluster); err == nil || !errors.Is(err, topology.ErrUnknownCluster) {
		err = s.SetClusterRecoveries(ctx, in.Cluster, r)
	}
	if err != nil {
		return RecoveriesView{}, unknownIsRefused(err)
	}
	return a.ShowRecoveries(ctx, in.Cluster)
}

// NodeRef names a node, and its cluster when the operator gave it.
type NodeRef struct {
	Cluster string // empty: the one cluster in Consul that has Host
	Host    string
}

// clusterOf finds the cluster whose primary, replicas or evicted nodes include the node:
// unknown is refused (ErrUnknownNode, ErrUnknownCluster), a name found in several
// clusters is a usage error (ErrAmbiguousNode).
func (a *Activities) clusterOf(ctx context.Context, s OperatorStore, in NodeRef) (string, topology.Topology, error) {
	if !config.ValidName(in.Host) {
		return "", topology.Topology{}, nonRetryable(ErrAmbiguousNode, "--host %q is not a valid node name (lower-case letters, digits, - and _)", in.Host)
	}
	names := []string{in.Cluster}
	if in.Cluster == "" {
		var err error
		if names, err = s.Clusters(ctx); err != nil {
			return "", topology.Topology{}, err
		}
	}
	var found []string
	var topo topology.Topology
	for _, n := range names {
		t, err := s.Read(ctx, n)
		if err != nil {
			if in.Cluster != "" {
				return "", t, unknownIsRefused(err)
			}
			continue
		}
		_, member := t.Find(in.Host)
		for _, e := range t.Evicted {
			member = member || e.Node.Name == in.Host
		}
		if member {
			found, topo = append(found, n), t
		}
	}
	switch len(found) {
	case 1:
		return found[0], topo, nil
	case 0:
		where := "any cluster in Consul"
		if in.Cluster != "" {
			where = "cluster " + in.Cluster
		}
		return "", topo, nonRetryable(ErrUnknownNode, "node %q is not a member of %s; `baton status` lists the nodes", in.Host, where)
	}
	return "", topo, nonRetryable(ErrAmbiguousNode, "node %q is in several clusters (%s); add --cluster", in.Host, strings.Join(found, ", "))
}

// DowntimeInput takes a node out of automatic decisions for For.
type DowntimeInput struct {
	NodeRef
	For    time.Duration
	Reason string
	By     string
}

// DowntimeResult says what SetDowntime wrote.
type DowntimeResult struct {
	Cluster  string
	Downtime topology.Downtime
	// Primary: the node is the cluster's primary (not failed over automatically); else a
	// replica (never a candidate).
	Primary bool
}

// SetDowntime writes a node's downtime, from now for in.For.
func (a *Activities) SetDowntime(ctx context.Context, in DowntimeInput) (DowntimeResult, error) {
	s, err := a.operatorStore()
	if err != nil {
		return DowntimeResult{}, err
	}
	c, t, err := a.clusterOf(ctx, s, in.NodeRef)
	if err != nil {
		return DowntimeResult{}, err
	}
	now := time.Now().UTC()
	dt := topology.Downtime{Node: in.Host, Reason: in.Reason, By: in.By, Since: now, Until: now.Add(in.For)}
	if err := s.SetDowntime(ctx, c, dt); err != nil {
		return DowntimeResult{}, err
	}
	return DowntimeResult{Cluster: c, Downtime: dt, Primary: t.Primary.Name == in.Host}, nil
}

// EndDowntime ends a node's downtime now and returns its cluster; a node without one is
// refused (ErrNoDowntime).
func (a *Activities) EndDowntime(ctx context.Context, in NodeRef) (string, error) {
	s, err := a.operatorStore()
	if err != nil {
		return "", err
	}
	c, t, err := a.clusterOf(ctx, s, in)
	if err != nil {
		return "", err
	}
	if _, ok := t.Downtimes[in.Host]; !ok {
		return c, nonRetryable(ErrNoDowntime, "%s of %s has no downtime", in.Host, c)
	}
	return c, s.EndDowntime(ctx, c, in.Host)
}

// AckInput acknowledges a cluster's last unplanned failover.
type AckInput struct {
	Cluster, By, Comment string
}

// AckResult says what Acknowledge found or wrote.
type AckResult struct {
	Failover topology.Record
	// Ack is the acknowledgement now in Consul: this one, or an earlier one (Already).
	Ack     topology.Ack
	Already bool
}

// Acknowledge records who acknowledged the cluster's last unplanned failover; a cluster
// without one is refused (ErrNothingToAck), one already acknowledged is left as it is.
func (a *Activities) Acknowledge(ctx context.Context, in AckInput) (AckResult, error) {
	s, err := a.operatorStore()
	if err != nil {
		return AckResult{}, err
	}
	t, err := s.Read(ctx, in.Cluster)
	if err != nil {
		return AckResult{}, unknownIsRefused(err)
	}
	lf := t.LastFailover
	if lf == nil {
		return AckResult{}, nonRetryable(ErrNothingToAck, "cluster %s has had no unplanned failover to acknowledge", in.Cluster)
	}
	if !t.Unacknowledged() {
		return AckResult{Failover: *lf, Ack: *t.Ack, Already: true}, nil
	}
	ack := topology.Ack{By: in.By, At: time.Now().UTC(), Comment: in.Comment, Epoch: lf.Epoch, WorkflowID: lf.WorkflowID}
	if err := s.Acknowledge(ctx, in.Cluster, ack); err != nil {
		return AckResult{}, err
	}
	return AckResult{Failover: *lf, Ack: ack}, nil
}

// PromotionInput sets a node's promotion rule at run time (`baton node set --promotion`).
type PromotionInput struct {
	NodeRef
	Rule, By string
}

// PromotionResult says where the rule was set.
type PromotionResult struct {
	Cluster string
	// Primary: the node is the primary now (the rule applies once it is a replica again).
	Primary bool
}

// SetPromotion writes a node's promotion rule; the next switchover's or failover's choice
// reads it.
func (a *Activities) SetPromotion(ctx context.Context, in PromotionInput) (PromotionResult, error) {
	if !slices.Contains(topology.PromotionRules, in.Rule) {
		return PromotionResult{}, nonRetryable(ErrBadConfig, "promotion rule %q: want one of %s", in.Rule, strings.Join(topology.PromotionRules, ", "))
	}
	s, err := a.operatorStore()
	if err != nil {
		return PromotionResult{}, err
	}
	c, t, err := a.clusterOf(ctx, s, in.NodeRef)
	if err != nil {
		return PromotionResult{}, err
	}
	r := topology.Promotion{Node: in.Host, Rule: in.Rule, By: in.By, At: time.Now().UTC()}
	if err := s.SetPromotion(ctx, c, r); err != nil {
		return PromotionResult{}, err
	}
	return PromotionResult{Cluster: c, Primary: t.Primary.Name == in.Host}, nil
}
