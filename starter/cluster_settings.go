package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/workflows"
)

// newClusterSet changes a cluster's settings in the catalog through the worker (the Operate
// workflow): validated as the config file's, recorded with who and when, followed by every
// detector and worker within seconds, with no file edit and no restart.
func newClusterSet() *cobra.Command {
	var name, as string
	cmd := &cobra.Command{
		Use:   "set --name NAME KEY=VALUE... [--as NAME]",
		Short: "Change a cluster's settings at run time (KEY as in the config's clusters section; KEY= gives back the default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !config.ValidName(name) {
				return usage(fmt.Errorf("--name %q is not a valid cluster name", name))
			}
			if strings.TrimSpace(as) == "" {
				return usage(fmt.Errorf("--as must name who changes the settings"))
			}
			for _, kv := range args {
				k, _, ok := strings.Cut(kv, "=")
				if !ok || !slices.Contains(config.SettingKeys(), strings.TrimSpace(k)) {
					return usage(fmt.Errorf("%q: want KEY=VALUE with KEY one of %s; nothing was changed", kv, strings.Join(config.SettingKeys(), ", ")))
				}
			}
			cfg, tc, err := operatorClient(cmd)
			if err != nil {
				return err
			}
			defer tc.Close()
			in := activities.ClusterSettingsInput{Cluster: name, Set: args, By: as}
			res, err := operate(cmd.Context(), cfg, tc, name, fmt.Sprintf("settings of %s: %s, by %s", name, strings.Join(args, " "), as), workflows.OperateInput{ClusterSettings: &in})
			if err != nil {
				return err
			}
			r := res.ClusterSettings
			if len(r.Changed) == 0 {
				fmt.Printf("%s: nothing changed (the settings already were so; last changed by %s at %s)\n", name, r.By, r.At.Format("2006-01-02T15:04:05Z"))
				return nil
			}
			fmt.Printf("%s: %s, by %s at %s; every detector and worker follows within seconds\n", name, strings.Join(r.Changed, ", "), r.By, r.At.Format("2006-01-02T15:04:05Z"))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "cluster name (required)")
	cmd.Flags().StringVar(&as, "as", currentUser(), "who changes them")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// newClusterShow prints a cluster's catalog entry and the settings in use, through the worker.
func newClusterShow() *cobra.Command {
	var name string
	var out *output
	cmd := &cobra.Command{
		Use:   "show --name NAME [-o json]",
		Short: "Show a cluster's settings (its catalog entry, defaults filled in) and who changed them last",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if !config.ValidName(name) {
				return usage(fmt.Errorf("--name %q is not a valid cluster name", name))
			}
			cfg, tc, err := operatorClient(cmd)
			if err != nil {
				return err
			}
			defer tc.Close()
			res, err := inspect(cmd.Context(), cfg, tc, workflows.InspectInput{What: workflows.InspectCluster, Cluster: name})
			if err != nil {
				return err
			}
			v := res.Cluster
			return out.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintf(w, "cluster %s: last change %q by %s at %s\n", v.Cluster, v.Change, v.By, v.At.Format("2006-01-02T15:04:05Z"))
				if v.Problem != "" {
					fmt.Fprintf(w, "PROBLEM: %s\n", v.Problem)
				}
				shown := v.Effective
				if shown == nil {
					shown = v.Settings
				}
				for _, k := range slices.Sorted(maps.Keys(shown)) {
					mark := ""
					if _, own := v.Settings[k]; !own {
						mark = "  (default)"
					}
					fmt.Fprintf(w, "  %s: %v%s\n", k, shown[k], mark)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "cluster name (required)")
	out = addOutput(cmd)
	_ = cmd.MarkFlagRequired("name")
	return cmd
}
