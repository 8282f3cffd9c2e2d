package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

// maxDowntime bounds a downtime: a forgotten one must not switch a node's failover off for good.
const maxDowntime = 30 * 24 * time.Hour

// store loads the config with its secrets and opens the topology store: for the verbs
// that still write Consul themselves (`cluster`, `node set`).
func store(cmd *cobra.Command) (*config.Config, *topology.Store, error) {
	cfg, err := loadFullConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	s, err := app.Topology(cfg)
	return cfg, s, err
}

func newDowntime() *cobra.Command {
	var cluster, host, reason, as string
	var d time.Duration
	cmd := &cobra.Command{
		Use:   "downtime --host NODE --for 2h --reason TEXT [--cluster NAME] [--as NAME]",
		Short: "Take a node out of automatic decisions until the downtime expires: never a candidate; as primary, not failed over automatically",
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case d <= 0 || d > maxDowntime:
				return usage(fmt.Errorf("--for %s: give a positive duration up to %s (for example --for 2h)", d, maxDowntime))
			case strings.TrimSpace(reason) == "":
				return refused(errors.New("--reason is required: say why, for whoever is paged next"))
			case strings.TrimSpace(as) == "":
				return refused(errors.New("--as must name who takes the downtime"))
			}
			if !config.ValidName(host) {
				return usage(fmt.Errorf("--host %q is not a valid node name (lower-case letters, digits, - and _)", host))
			}
			cfg, tc, err := operatorClient(cmd)
			if err != nil {
				return err
			}
			defer tc.Close()
			in := activities.DowntimeInput{NodeRef: activities.NodeRef{Cluster: cluster, Host: host}, For: d, Reason: reason, By: as}
			res, err := operate(cmd.Context(), cfg, tc, cluster, fmt.Sprintf("downtime of %s for %s by %s", host, d, as), workflows.OperateInput{Downtime: &in})
			if err != nil {
				return err
			}
			c, dt := res.Downtime.Cluster, res.Downtime.Downtime
			role := "replica: it is never a candidate"
			if res.Downtime.Primary {
				role = "primary: it is not failed over automatically (a human's `baton failover --force` still is)"
			}
			fmt.Printf("%s of %s is downtimed until %s by %s (%s); as %s\n", host, c, dt.Until.Format(time.RFC3339), as, reason, role)
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "node name (required)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster of the node (default: the one cluster that has it)")
	cmd.Flags().DurationVar(&d, "for", 0, "how long, at most 30 days (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	cmd.Flags().StringVar(&as, "as", currentUser(), "who takes the downtime")
	_ = cmd.MarkFlagRequired("host")
	_ = cmd.MarkFlagRequired("for")
	end := &cobra.Command{
		Use:   "end --host NODE [--cluster NAME]",
		Short: "End a node's downtime now",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(host) {
				return usage(fmt.Errorf("--host %q is not a valid node name (lower-case letters, digits, - and _)", host))
			}
			cfg, tc, err := operatorClient(cmd)
			if err != nil {
				return err
			}
			defer tc.Close()
			res, err := operate(cmd.Context(), cfg, tc, cluster, fmt.Sprintf("end of the downtime of %s", host),
				workflows.OperateInput{EndDowntime: &activities.NodeRef{Cluster: cluster, Host: host}})
			if err != nil {
				return err
			}
			c := res.EndedDowntimeOf
			fmt.Printf("downtime of %s (%s) ended\n", host, c)
			return nil
		},
	}
	end.Flags().StringVar(&host, "host", "", "node name (required)")
	end.Flags().StringVar(&cluster, "cluster", "", "cluster of the node (default: the one cluster that has it)")
	_ = end.MarkFlagRequired("host")
	cmd.AddCommand(end)
	return cmd
}

func newAck() *cobra.Command {
	var cluster, comment, as string
	cmd := &cobra.Command{
		Use:   "ack --cluster NAME [--comment TEXT] [--as NAME]",
		Short: "Acknowledge a cluster's last unplanned failover (status lists unacknowledged ones)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(cluster) {
				return usage(fmt.Errorf("--cluster %q is not a valid cluster name", cluster))
			}
			if strings.TrimSpace(as) == "" {
				return refused(errors.New("--as must name who acknowledges"))
			}
			cfg, tc, err := operatorClient(cmd)
			if err != nil {
				return err
			}
			defer tc.Close()
			res, err := operate(cmd.Context(), cfg, tc, cluster, fmt.Sprintf("acknowledgement of the failover of %s by %s", cluster, as),
				workflows.OperateInput{Ack: &activities.AckInput{Cluster: cluster, By: as, Comment: comment}})
			if err != nil {
				return err
			}
			lf := res.Ack.Failover
			if res.Ack.Already {
				fmt.Printf("the failover of %s at epoch %d was already acknowledged by %s at %s\n", cluster, lf.Epoch, res.Ack.Ack.By, res.Ack.Ack.At.Format(time.RFC3339))
				return nil
			}
			fmt.Printf("acknowledged the failover of %s (%s -> %s at %s, epoch %d) as %s\n", cluster, lf.From, lf.To, lf.At.Format(time.RFC3339), lf.Epoch, as)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster (required)")
	cmd.Flags().StringVar(&comment, "comment", "", "what was found, for the record")
	cmd.Flags().StringVar(&as, "as", currentUser(), "who acknowledges")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}

// operatorClient loads the CLI's config and dials Temporal, for a verb the worker runs.
func operatorClient(cmd *cobra.Command) (*config.Config, client.Client, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	c, err := dial(cmd.Context(), cfg)
	return cfg, c, err
}

func newRecoveries() *cobra.Command {
	var reason, as, cluster string
	var out *output
	show := func(cmd *cobra.Command, _ []string) error {
		if err := out.check(); err != nil {
			return err
		}
		cfg, tc, err := operatorClient(cmd)
		if err != nil {
			return err
		}
		defer tc.Close()
		res, err := inspect(cmd.Context(), cfg, tc, workflows.InspectInput{What: workflows.InspectRecoveries, Cluster: cluster})
		if err != nil {
			return err
		}
		return printRecoveries(cmd, out, *res.Recoveries)
	}
	set := func(disabled bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			scope := "every automatic failover"
			if cluster != "" {
				scope = "automatic failover of " + cluster
			}
			if disabled && strings.TrimSpace(reason) == "" {
				return refused(fmt.Errorf("--reason is required: say why %s is off", scope))
			}
			if strings.TrimSpace(as) == "" {
				return refused(errors.New("--as must name who switches recoveries"))
			}
			cfg, tc, err := operatorClient(cmd)
			if err != nil {
				return err
			}
			defer tc.Close()
			// An unknown cluster is refused; any other read problem (a malformed switch
			// among them) does not stop a human from setting the switch (SetRecoveries).
			res, err := operate(cmd.Context(), cfg, tc, cluster, fmt.Sprintf("%s by %s", scope, as),
				workflows.OperateInput{Recoveries: &activities.RecoveriesInput{Cluster: cluster, Disabled: disabled, By: as, Reason: reason}})
			if err != nil {
				return err
			}
			return printRecoveries(cmd, out, *res.Recoveries)
		}
	}
	cmd := &cobra.Command{Use: "recoveries [enable|disable] [--cluster NAME] [-o json]", Short: "Show, enable or disable automatic failover, for every cluster or for one", RunE: show}
	out = addOutput(cmd)
	disable := &cobra.Command{Use: "disable --reason TEXT [--cluster NAME] [--as NAME]",
		Short: "Turn automatic failover off, for every cluster or for one (detectors log what they would have done)", RunE: set(true)}
	enable := &cobra.Command{Use: "enable [--cluster NAME] [--as NAME]", Short: "Turn automatic failover back on, for every cluster or for one", RunE: set(false)}
	for _, c := range []*cobra.Command{disable, enable} {
		c.Flags().StringVar(&as, "as", currentUser(), "who switches")
		c.Flags().StringVar(&reason, "reason", "", "why")
	}
	cmd.PersistentFlags().StringVar(&cluster, "cluster", "", "one cluster's switch (default: the global switch)")
	cmd.AddCommand(disable, enable)
	return cmd
}

// printRecoveries prints the switches of automatic failover (`baton recoveries`).
func printRecoveries(cmd *cobra.Command, out *output, v activities.RecoveriesView) error {
	r, cluster := v.Global, v.Cluster
	return out.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
		if r.Disabled {
			fmt.Fprintf(w, "automatic recoveries are disabled for every cluster, by %s at %s: %s\n", r.By, r.At.Format(time.RFC3339), r.Reason)
		} else {
			fmt.Fprintln(w, "automatic recoveries are enabled")
		}
		if cluster == "" {
			return nil
		}
		switch c := v.ClusterSwitch; {
		case c != nil && c.Disabled:
			fmt.Fprintf(w, "automatic recoveries of %s are disabled, by %s at %s: %s\n", cluster, c.By, c.At.Format(time.RFC3339), c.Reason)
		case r.Disabled:
			fmt.Fprintf(w, "automatic recoveries of %s are enabled for the cluster, and off by the global switch\n", cluster)
		default:
			fmt.Fprintf(w, "automatic recoveries of %s are enabled\n", cluster)
		}
		return nil
	})
}
