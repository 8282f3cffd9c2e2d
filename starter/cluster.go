package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/workflows"
)

// The cluster verbs run on the worker like every other verb, so the CLI needs only its
// Temporal connection: `cluster add` is the AddCluster workflow, `cluster list` an Inspect
// read, `cluster remove` an Operate write (`cluster set` and `show`: cluster_settings.go).
// `cluster add --local` and `cluster list --local` run the same steps in the CLI, with the
// full config (secrets_file: the admin and replication accounts, Consul's token): the
// bootstrap of a fleet whose worker does not run yet (deploy/local/sandbox.sh,
// deploy/docker/bootstrap.sh).

func newCluster() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster add|list|show|set|remove", Short: "Onboard, list, change and remove clusters (the catalog and their topology in Consul)"}
	cmd.AddCommand(newClusterAdd(), newClusterList(), newClusterShow(), newClusterSet(), newClusterRemove())
	return cmd
}

const localHelp = "run in this process with the full config (secrets_file: the admin and replication accounts, Consul's token), not on the worker: the bootstrap, before any worker runs"

func newClusterAdd() *cobra.Command {
	var name, primary, flavorName, defaultZone, as string
	var names, zones map[string]string
	var attach, sets []string
	var dryRun, initPrimary, local bool
	cmd := &cobra.Command{
		Use:   "add --name NAME --primary HOST:PORT [--zones ADDR=ZONE,...] [--names ADDR=NAME,...]",
		Short: "Discover a cluster from its primary, check every node, seed its topology in Consul and enter it in the catalog (on the worker)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(name) {
				return usage(fmt.Errorf("--name %q is not a valid cluster name (lower-case letters, digits, - and _)", name))
			}
			if strings.TrimSpace(as) == "" {
				return usage(errors.New("--as must name who adds the cluster"))
			}
			in := activities.AddClusterInput{Cluster: name, Primary: primary, Names: names, Zones: zones, DefaultZone: defaultZone,
				Init: initPrimary, Attach: attach, Set: sets, DryRun: dryRun, By: as}
			if cmd.Flags().Changed("flavor") {
				if _, err := flavor.ByName(flavorName); err != nil {
					return usage(fmt.Errorf("--flavor: %w", err))
				}
				in.Flavor = flavorName
			}
			var res activities.AddClusterResult
			var err error
			if local {
				res, err = addLocal(cmd, in)
			} else {
				res, err = addRemote(cmd, in)
			}
			if err != nil {
				return clusterExit(err)
			}
			return printAdd(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "cluster name (required)")
	cmd.Flags().StringVar(&primary, "primary", "", "the primary's host:port (required)")
	cmd.Flags().StringVar(&flavorName, "flavor", "mariadb", "mariadb or mysql (default: the cluster's section of the worker's config)")
	cmd.Flags().StringToStringVar(&names, "names", nil, "node names by address (host:port or host), as ADDR=NAME,...")
	cmd.Flags().StringToStringVar(&zones, "zones", nil, "zones by address (host:port or host)")
	cmd.Flags().StringVar(&defaultZone, "default-zone", "", "zone of the nodes --zones does not name")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "the settings, the discovery and the checks only; nothing is prepared or written")
	cmd.Flags().BoolVar(&initPrimary, "init", false, "a new cluster: make the primary writable with semi-sync on and create Baton's heartbeat schema")
	cmd.Flags().StringSliceVar(&attach, "attach", nil, "new servers (host:port,...) to make read-only replicas of the primary first")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "a setting, KEY=VALUE as in the config's clusters section (repeatable; see `baton cluster set`); by default the worker's config file's section for the cluster, else the defaults, with frontends on every remote HAProxy at the next free port pair")
	cmd.Flags().StringVar(&as, "as", currentUser(), "who adds it (recorded in the catalog entry)")
	cmd.Flags().BoolVar(&local, "local", false, localHelp)
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("primary")
	return cmd
}

// addRemote runs the AddCluster workflow (add/<cluster>) and waits for its result. Another
// add of the same cluster that runs is a refusal.
func addRemote(cmd *cobra.Command, in activities.AddClusterInput) (activities.AddClusterResult, error) {
	var out activities.AddClusterResult
	cfg, tc, err := operatorClient(cmd)
	if err != nil {
		return out, err
	}
	defer tc.Close()
	what := "add"
	if in.DryRun {
		what = "add --dry-run"
	}
	summary := fmt.Sprintf("baton cluster %s %s (primary %s), by %s", what, in.Cluster, in.Primary, in.By)
	id := start.AddClusterWorkflowID(in.Cluster)
	run, err := tc.ExecuteWorkflow(cmd.Context(), start.AddClusterOptions(in.Cluster, cfg.Temporal.TaskQueue, summary), start.AddCluster, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return out, refused(fmt.Errorf("another add of %s is running (workflow %s); wait for it to end, nothing was changed", in.Cluster, id))
	}
	if err != nil {
		return out, fmt.Errorf("start %s on Temporal: %w", start.AddCluster, err)
	}
	err = run.Get(cmd.Context(), &out)
	var app *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	var act *temporal.ActivityError
	switch {
	case err == nil:
		return out, nil
	case cmd.Context().Err() != nil:
		return out, unknownOutcome(fmt.Errorf("stopped waiting for the add of %s (workflow %s): it may still run; `baton cluster list` shows whether it was seeded (%w)", in.Cluster, id, err))
	case errors.As(err, &app):
		return out, remoteError(err, cfg.Temporal.TaskQueue)
	case errors.As(err, &timeout) && errors.As(err, &act):
		return out, failed(fmt.Errorf("the add of %s failed: its step %s did not end in time; `baton cluster list` shows whether it was seeded (%w)", in.Cluster, act.ActivityType().GetName(), err))
	case errors.As(err, &timeout):
		return out, failed(fmt.Errorf("the add of %s (workflow %s) did not end within %s: is a baton-worker running on task queue %q? `baton cluster list` shows whether it was seeded (%w)",
			in.Cluster, id, start.AddClusterTimeout, cfg.Temporal.TaskQueue, err))
	}
	return out, err
}

// addLocal runs the add's steps in this process, with the full config's accounts and token.
func addLocal(cmd *cobra.Command, in activities.AddClusterInput) (activities.AddClusterResult, error) {
	cfg, s, err := store(cmd)
	if err != nil {
		return activities.AddClusterResult{}, err
	}
	l := activities.Local{Activities: activities.New(cfg, s)}
	defer l.Close()
	return l.AddClusterSteps(cmd.Context(), in, time.Now())
}

// clusterExit gives the cluster steps' errors their exit codes: bad settings or addresses
// are a usage error (exit 2), an existing cluster or servers that fail the checks a
// refusal (exit 3); nothing was changed for any of them.
func clusterExit(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case activities.ErrBadSettings:
			return usage(err)
		case activities.ErrClusterExists, activities.ErrCannotOnboard:
			return refused(err)
		}
	}
	return err
}

// printAdd prints what the add did, as the CLI always has: the nodes discovered, the seed
// and the catalog entry with each HAProxy's frontends.
func printAdd(w io.Writer, r activities.AddClusterResult) error {
	if r.Prepared != nil {
		fmt.Fprintln(w, r.Prepared.String())
	}
	p := r.Primary
	fmt.Fprintf(w, "cluster %s (%s): primary %s (%s, zone %s, server_id %d)\n", r.Cluster, r.Flavor, p.Name, p.Addr(), p.Zone, p.ServerID)
	for _, n := range r.Replicas {
		fmt.Fprintf(w, "  replica %s (%s, zone %s, server_id %d)\n", n.Name, n.Addr(), n.Zone, n.ServerID)
	}
	if r.DryRun {
		fmt.Fprintln(w, "dry run: every check passed; nothing was written")
		return nil
	}
	if r.Seed == nil {
		return fmt.Errorf("the add of %s ended without seeding it; `baton cluster list` shows what Consul has", r.Cluster)
	}
	fmt.Fprintf(w, "seeded %s in Consul at epoch 1\n", r.Cluster)
	switch s := r.Seed; {
	case s.EnterError != "":
		return fmt.Errorf("seeded, but not entered in the catalog (no detector watches it yet): %s; run `baton cluster remove --name %s --yes` and add it again", s.EnterError, r.Cluster)
	case s.AlreadyInCatalog:
		fmt.Fprintf(w, "%s was already in the catalog (entered from a config file); its settings there are kept: `baton cluster show --name %s`\n", r.Cluster, r.Cluster)
	default:
		fmt.Fprintf(w, "entered %s in the catalog: the detectors watch it, the workers serve it, and the remote HAProxies route it:\n", r.Cluster)
		for _, h := range r.HAProxies {
			fmt.Fprintf(w, "  HAProxy %s (zone %s): writer %s, reader %s\n", h.Name, h.Zone, h.Writer, h.Reader)
		}
	}
	return nil
}

func newClusterList() *cobra.Command {
	var out *output
	var local bool
	cmd := &cobra.Command{
		Use:   "list [-o json]",
		Short: "List the clusters in Consul: primary, replicas, epoch, and whether the catalog has them (the fleet runs them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			list, err := listClusters(cmd, local)
			if err != nil {
				return err
			}
			if list == nil {
				list = []activities.ClusterListEntry{}
			}
			return out.print(cmd.OutOrStdout(), list, func(w io.Writer) error { return printClusters(w, list) })
		},
	}
	out = addOutput(cmd)
	cmd.Flags().BoolVar(&local, "local", false, localHelp)
	return cmd
}

// listClusters reads the list through Inspect on the worker, or here with --local.
func listClusters(cmd *cobra.Command, local bool) ([]activities.ClusterListEntry, error) {
	if local {
		cfg, s, err := store(cmd)
		if err != nil {
			return nil, err
		}
		return activities.New(cfg, s).ListClusters(cmd.Context())
	}
	cfg, tc, err := operatorClient(cmd)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	res, err := inspect(cmd.Context(), cfg, tc, workflows.InspectInput{What: workflows.InspectClusters})
	return res.Clusters, err
}

func printClusters(w io.Writer, list []activities.ClusterListEntry) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tEPOCH\tPRIMARY\tREPLICAS\tIN CATALOG")
	for _, e := range list {
		if e.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t%v\t\t%v\n", e.Cluster, e.Error, e.InCatalog)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s (%s)\t%s\t%v\n", e.Cluster, e.Epoch, e.Primary, e.PrimaryAt, strings.Join(e.Replicas, ","), e.InCatalog)
	}
	return tw.Flush()
}

func newClusterRemove() *cobra.Command {
	var name string
	var yes bool
	cmd := &cobra.Command{
		Use:   "remove --name NAME --yes",
		Short: "Delete a cluster's catalog entry and topology from Consul, on the worker (the servers are untouched)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(name) {
				return usage(fmt.Errorf("--name %q is not a valid cluster name", name))
			}
			if !yes {
				return refused(fmt.Errorf("removing %s deletes its topology from Consul: HAProxy stops routing to it. Add --yes to confirm", name))
			}
			cfg, tc, err := operatorClient(cmd)
			if err != nil {
				return err
			}
			defer tc.Close()
			// A switchover, failover, rejoin or node removal of the cluster, or its add, owns
			// it until it ends.
			for _, id := range []string{start.WorkflowID(name), start.AddClusterWorkflowID(name)} {
				if err := notRunning(cmd.Context(), tc, name, id); err != nil {
					return err
				}
			}
			in := activities.RemoveClusterInput{Cluster: name, By: currentUser()}
			res, err := operate(cmd.Context(), cfg, tc, name, fmt.Sprintf("remove %s from Consul, by %s", name, in.By), workflows.OperateInput{RemoveCluster: &in})
			if err != nil {
				return err
			}
			fmt.Printf("removed %s from Consul", name)
			if res.RemovedCluster != nil && res.RemovedCluster.InFile {
				fmt.Printf("; remove it from clusters: in the config too")
			}
			fmt.Println()
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "cluster name (required)")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// notRunning refuses when the workflow id of the cluster runs.
func notRunning(ctx context.Context, tc client.Client, cluster, id string) error {
	d, err := tc.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return fmt.Errorf("cannot tell whether an operation of %s is running: %w", cluster, err)
	case d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return refused(fmt.Errorf("%s of %s is running (workflow %s); wait for it to end", d.GetWorkflowExecutionInfo().GetType().GetName(), cluster, id))
	}
	return nil
}
