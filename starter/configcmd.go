package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/baton-db/baton/internal/app"
)

// configView is `baton config validate -o json`.
type configView struct {
	Valid     bool     `json:"valid"`
	Error     string   `json:"error,omitempty"`
	Clusters  []string `json:"clusters,omitempty"`
	Temporal  string   `json:"temporal,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Consul    string   `json:"consul,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

func newConfig() *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Check Baton's configuration"}
	cfg.AddCommand(newConfigValidate())
	return cfg
}

func newConfigValidate() *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "validate --config FILE [-o json]",
		Short: "Load and validate the config and its secrets file; every mistake names its key (exit 2 when invalid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			stdout := cmd.OutOrStdout()
			c, err := app.LoadConfig(cmd.Flags())
			if err != nil {
				if out.json() {
					_ = writeJSON(stdout, configView{Error: err.Error()}, true)
				}
				return usage(err)
			}
			v := configView{Valid: true, Clusters: make([]string, 0, len(c.Clusters)), Temporal: c.Temporal.Address,
				Namespace: c.Temporal.Namespace, Consul: c.Consul.Address, Warnings: c.Warnings()}
			for n := range c.Clusters {
				v.Clusters = append(v.Clusters, n)
			}
			sort.Strings(v.Clusters)
			return out.print(stdout, v, func(w io.Writer) error {
				fmt.Fprintf(w, "config is valid: clusters %v, Temporal %s namespace %s, Consul %s\n", v.Clusters, v.Temporal, v.Namespace, v.Consul)
				for _, warn := range v.Warnings {
					fmt.Fprintf(w, "warning: %s\n", warn)
				}
				return nil
			})
		},
	}
	out = addOutput(cmd)
	return cmd
}
