package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

func newStatus() *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "status --cluster NAME",
		Short: "Show the primary, the replicas with their lag, the epoch and any open workflow",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadCluster(cmd, cluster)
			if err != nil {
				return err
			}
			topo, err := app.Topology(cfg)
			if err != nil {
				return err
			}
			t, err := topo.Read(cmd.Context(), cluster)
			if err != nil {
				return err
			}
			acts := activities.New(cfg, topo)
			defer activities.Close(acts)
			fmt.Printf("cluster %s  epoch %d  maintenance %v\n", cluster, t.Epoch, t.Maintenance)
			tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tNODE\tADDRESS\tZONE\tIO\tSQL\tLAG\tGTIDS")
			fmt.Fprintf(tw, "primary\t%s\t%s\t%s\t-\t-\t-\t\n", t.Primary.Name, t.Primary.Addr(), t.Primary.Zone)
			for _, r := range t.Replicas {
				o := activities.Observe(cmd.Context(), acts, cluster, r)
				lag := "unknown"
				if o.LagMS >= 0 {
					lag = fmt.Sprintf("%dms", o.LagMS)
				}
				g := ""
				if o.GTIDs != nil {
					g = o.GTIDs.String()
				}
				if !o.Reachable {
					g = "unreachable: " + o.Error
				}
				fmt.Fprintf(tw, "replica\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", r.Name, r.Addr(), r.Zone, o.IO, o.SQLRunning, lag, g)
			}
			for _, e := range t.Evicted {
				fmt.Fprintf(tw, "evicted\t%s\t%s\t%s\t\t\t\t%s\n", e.Node.Name, e.Node.Addr(), e.Node.Zone, e.Reason)
			}
			_ = tw.Flush()
			for _, lf := range []*topology.Record{t.LastSwitchover, t.LastFailover} {
				if lf != nil {
					fmt.Printf("last %s: %s -> %s at %s (epoch %d, %s)\n", lf.Kind, lf.From, lf.To, lf.At.Format("2006-01-02 15:04:05Z07:00"), lf.Epoch, lf.WorkflowID)
				}
			}
			c, err := app.Client(cmd.Context(), cfg, quietLogger())
			if err != nil {
				fmt.Printf("open workflow: unknown (%v)\n", err)
				return nil
			}
			defer c.Close()
			d, err := c.DescribeWorkflowExecution(cmd.Context(), workflows.WorkflowID(cluster), "")
			var nf *serviceerror.NotFound
			switch {
			case errors.As(err, &nf):
				fmt.Println("open workflow: none")
			case err != nil:
				fmt.Printf("open workflow: unknown (%v)\n", err)
			case d.WorkflowExecutionInfo.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
				fmt.Printf("open workflow: %s (%s) running since %s\n", workflows.WorkflowID(cluster),
					d.WorkflowExecutionInfo.GetType().GetName(), d.WorkflowExecutionInfo.GetStartTime().AsTime().Format("15:04:05"))
			default:
				fmt.Println("open workflow: none")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster name (required)")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
