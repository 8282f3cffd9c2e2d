package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

// statusReport is what `baton status` shows, and prints with --json.
type statusReport struct {
	At         time.Time           `json:"at"`
	Recoveries topology.Recoveries `json:"recoveries"`
	Clusters   []clusterStatus     `json:"clusters"`
}

type clusterStatus struct {
	activities.Health
	Workflow *openWorkflow `json:"workflow,omitempty"`
	// WatchedBy is the detector that holds the cluster's lock ("" when none does).
	WatchedBy string `json:"watched_by"`
	// Error: the cluster could not be read at all.
	Error string `json:"error,omitempty"`
}

type openWorkflow struct {
	ID    string    `json:"id"`
	RunID string    `json:"run_id"`
	Type  string    `json:"type"`
	Step  string    `json:"step"`
	Since time.Time `json:"since"`
}

func newStatus() *cobra.Command {
	var cluster string
	var asJSON, watch bool
	var every time.Duration
	var out *output
	cmd := &cobra.Command{
		Use:   "status [--cluster NAME] [-o json] [--watch]",
		Short: "Show every cluster (or one): primary, replicas and lag, problems, downtimes, unacknowledged failovers, the open workflow",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			asJSON = asJSON || out.json()
			load := loadConfig
			if cluster != "" {
				load = func(cmd *cobra.Command) (*config.Config, error) { return loadCluster(cmd, cluster) }
			}
			cfg, err := load(cmd)
			if err != nil {
				return err
			}
			tc, err := dial(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer tc.Close()
			for {
				r, err := gatherStatus(cmd.Context(), cfg, tc, cluster)
				if err != nil {
					return err
				}
				if watch && !asJSON {
					fmt.Fprint(os.Stdout, "\033[H\033[2J")
				}
				if asJSON {
					if err := writeJSON(os.Stdout, r, !watch); err != nil {
						return err
					}
				} else {
					printStatus(os.Stdout, r, cluster != "")
				}
				if !watch {
					return unreadable(r)
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "one cluster, shown node by node (default: every cluster)")
	out = addOutput(cmd) // with --watch, -o json prints one document per line
	// Deprecated in the help only: a notice on stderr would break scripts that merge it.
	cmd.Flags().BoolVar(&asJSON, "json", false, "deprecated: use -o json")
	cmd.Flags().BoolVar(&watch, "watch", false, "refresh until interrupted")
	cmd.Flags().DurationVar(&every, "interval", 2*time.Second, "refresh interval of --watch")
	return cmd
}

// unreadable fails the command when a cluster could not be read at all, so scripts notice.
func unreadable(r statusReport) error {
	var bad []string
	for _, c := range r.Clusters {
		if c.Error != "" {
			bad = append(bad, c.Cluster+": "+c.Error)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d cluster(s) could not be read: %s", len(bad), strings.Join(bad, "; "))
}

// gatherStatus asks the worker to read every cluster Consul or the config knows (or just
// one): the Inspect workflow runs activities.Status, which reaches Consul and every node.
// The open workflow of each cluster the CLI reads from Temporal itself.
func gatherStatus(ctx context.Context, cfg *config.Config, tc client.Client, only string) (statusReport, error) {
	res, err := inspect(ctx, cfg, tc, workflows.InspectInput{What: workflows.InspectStatus, Cluster: only})
	if err != nil {
		return statusReport{}, err
	}
	open := openWorkflows(ctx, cfg, tc)
	s := res.Status
	r := statusReport{At: s.At, Recoveries: s.Recoveries, Clusters: make([]clusterStatus, len(s.Clusters))}
	for i, c := range s.Clusters {
		r.Clusters[i] = clusterStatus{Health: c.Health, Workflow: open[c.Cluster], WatchedBy: c.WatchedBy, Error: c.Error}
	}
	return r, nil
}

// openWorkflows returns the running workflow of each cluster, by its search attributes:
// one list call for every cluster.
func openWorkflows(ctx context.Context, cfg *config.Config, tc client.Client) map[string]*openWorkflow {
	out := map[string]*openWorkflow{}
	if tc == nil {
		return out
	}
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: cfg.Temporal.Namespace,
		Query: "ExecutionStatus='Running' AND BatonCluster IS NOT NULL"})
	if err != nil {
		return out
	}
	dc := converter.GetDefaultDataConverter()
	for _, e := range resp.GetExecutions() {
		attr := func(k string) string {
			var s string
			if p := e.GetSearchAttributes().GetIndexedFields()[k]; p != nil {
				_ = dc.FromPayload(p, &s)
			}
			return s
		}
		out[attr("BatonCluster")] = &openWorkflow{ID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
			Type: e.GetType().GetName(), Step: attr("BatonStep"), Since: e.GetStartTime().AsTime()}
	}
	return out
}

func printStatus(w io.Writer, r statusReport, detailed bool) {
	if r.Recoveries.Disabled {
		fmt.Fprintf(w, "automatic recoveries: DISABLED for every cluster by %s at %s: %s\n\n", r.Recoveries.By, r.Recoveries.At.UTC().Format(time.RFC3339), r.Recoveries.Reason)
	} else {
		fmt.Fprintf(w, "automatic recoveries: enabled\n\n")
	}
	if detailed && len(r.Clusters) == 1 {
		printCluster(w, r.Clusters[0])
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tEPOCH\tPRIMARY\tREPLICAS (lag)\tDETECTOR\tWORKFLOW\tPROBLEMS")
	for _, c := range r.Clusters {
		primary, replicas := "-", []string{}
		for _, n := range c.Nodes {
			if n.Role == "primary" {
				primary = n.Name + " (" + n.Zone + ")"
				continue
			}
			replicas = append(replicas, n.Name+" "+lagText(n))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\n", c.Cluster, c.Epoch, primary, orDefault(strings.Join(replicas, ", "), "-"),
			orDefault(c.WatchedBy, "none"), workflowText(c.Workflow), len(c.Problems))
	}
	_ = tw.Flush()
	for _, c := range r.Clusters {
		if len(c.Problems) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", c.Cluster)
		for _, p := range c.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
}

// printCluster is one cluster, node by node.
func printCluster(w io.Writer, c clusterStatus) {
	fmt.Fprintf(w, "cluster %s  epoch %d  maintenance %v\n", c.Cluster, c.Epoch, c.Maintenance)
	if r := c.Recoveries; r != nil && r.Disabled {
		fmt.Fprintf(w, "automatic recoveries: DISABLED for %s by %s at %s: %s\n", c.Cluster, r.By, r.At.UTC().Format(time.RFC3339), r.Reason)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tNODE\tADDRESS\tZONE\tIO\tSQL\tLAG\tGTIDS")
	for _, n := range c.Nodes {
		io, sql := "-", "-"
		if n.Role == "replica" {
			io, sql = n.IO, fmt.Sprint(n.SQL)
		}
		g := n.GTIDs
		if !n.Reachable {
			g = "unreachable: " + n.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Role, n.Name, n.Addr, n.Zone, io, sql, lagText(n), g)
	}
	for _, e := range c.Evicted {
		fmt.Fprintf(tw, "evicted\t%s\t%s\t%s\t\t\t\t%s\n", e.Node.Name, e.Node.Addr(), e.Node.Zone, e.Reason)
	}
	_ = tw.Flush()
	var rules []string
	for _, n := range c.Nodes {
		if n.Promotion != "" {
			rules = append(rules, n.Name+" "+n.Promotion)
		}
	}
	if len(rules) > 0 {
		fmt.Fprintf(w, "promotion rules: %s\n", strings.Join(rules, ", "))
	}
	if lf := c.LastFailover; lf != nil {
		ack := "UNACKNOWLEDGED"
		if c.Acknowledged != nil {
			ack = "acknowledged by " + c.Acknowledged.By
		}
		fmt.Fprintf(w, "last unplanned: %s -> %s at %s (epoch %d, %s), %s\n", lf.From, lf.To, lf.At.UTC().Format(time.RFC3339), lf.Epoch, lf.WorkflowID, ack)
	}
	fmt.Fprintf(w, "watched by: %s\nopen workflow: %s\n", orDefault(c.WatchedBy, "no detector"), workflowText(c.Workflow))
	if len(c.Problems) == 0 {
		fmt.Fprintln(w, "problems: none")
		return
	}
	fmt.Fprintln(w, "problems:")
	for _, p := range c.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

func lagText(n activities.NodeHealth) string {
	switch {
	case n.Role == "primary":
		return "-"
	case !n.Reachable:
		return "unreachable"
	case n.LagMS < 0:
		return "lag unknown"
	}
	return fmt.Sprintf("%dms", n.LagMS)
}

func workflowText(o *openWorkflow) string {
	if o == nil {
		return "none"
	}
	return fmt.Sprintf("%s at %q since %s", o.Type, o.Step, o.Since.Local().Format("15:04:05"))
}
