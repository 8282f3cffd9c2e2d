package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/baton-db/baton/internal/app"
)

func newConfig() *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Check Baton's configuration"}
	cfg.AddCommand(&cobra.Command{
		Use:   "validate --config FILE",
		Short: "Load and validate the config and its secrets file; every mistake names its key",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.LoadConfig(cmd.Flags())
			if err != nil {
				return err
			}
			names := make([]string, 0, len(c.Clusters))
			for n := range c.Clusters {
				names = append(names, n)
			}
			sort.Strings(names)
			fmt.Printf("config is valid: clusters %v, Temporal %s namespace %s, Consul %s\n", names, c.Temporal.Address, c.Temporal.Namespace, c.Consul.Address)
			for _, w := range c.Warnings() {
				fmt.Printf("warning: %s\n", w)
			}
			return nil
		},
	})
	return cfg
}
