package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-db/baton/internal/topology"
)

func newNode() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Change a node of a running cluster (its promotion rule)"}
	cmd.AddCommand(newNodeSet())
	return cmd
}

// newNodeSet sets a node's promotion rule in Consul: the next switchover's or failover's
// choice reads it, with no file edit and no restart.
func newNodeSet() *cobra.Command {
	var cluster, host, rule, as string
	cmd := &cobra.Command{
		Use:   "set --host NODE --promotion prefer|neutral|prefer_not|must_not [--cluster NAME] [--as NAME]",
		Short: "Set a node's promotion rule at run time (it overrides the config's prefer and must_not for that node)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(topology.PromotionRules, rule) {
				return usage(fmt.Errorf("--promotion %q: want one of %s", rule, strings.Join(topology.PromotionRules, ", ")))
			}
			if strings.TrimSpace(as) == "" {
				return refused(fmt.Errorf("--as must name who sets the rule"))
			}
			_, s, err := store(cmd)
			if err != nil {
				return err
			}
			c, t, err := clusterOf(cmd.Context(), s, cluster, host)
			if err != nil {
				return err
			}
			r := topology.Promotion{Node: host, Rule: rule, By: as, At: time.Now().UTC()}
			if err := s.SetPromotion(cmd.Context(), c, r); err != nil {
				return err
			}
			note := ""
			if rule == "must_not" && t.Primary.Name == host {
				note = " (it is the primary now: the rule applies when it is a replica again)"
			}
			fmt.Printf("%s of %s: promotion %s, set by %s; the next switchover or failover reads it%s\n", host, c, rule, as, note)
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "node name (required)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster of the node (default: the one cluster that has it)")
	cmd.Flags().StringVar(&rule, "promotion", "", "prefer, neutral, prefer_not or must_not (required)")
	cmd.Flags().StringVar(&as, "as", currentUser(), "who sets it")
	_ = cmd.MarkFlagRequired("host")
	_ = cmd.MarkFlagRequired("promotion")
	return cmd
}
