package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/version"
	"github.com/baton-db/baton/workflows"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "baton",
		Short:         "Baton moves the primary role of a MySQL cluster, as a Temporal workflow",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	app.AddFlags(root.PersistentFlags())
	root.AddCommand(newSwitchover(), newStatus(), newFailover(), newRejoin(), newWatch(),
		newDecision(workflows.UpdateApprove, "Approve the switchover waiting at its approval gate"),
		newDecision(workflows.UpdateAbort, "Abort the switchover waiting at its approval gate; nothing is changed"),
		newHistory(), newReplay(), newPostmortem(),
		newConfig(), newDowntime(), newAck(), newRecoveries(), newCluster(), newSetup(), newVersion())
	return root
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build of this baton (version, commit, Go); the servers export theirs as baton_build_info",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "baton "+version.Get().String())
			return err
		},
	}
}

// loadCluster loads the config and checks that the cluster is configured.
func loadCluster(cmd *cobra.Command, cluster string) (*config.Config, error) {
	cfg, err := app.LoadConfig(cmd.Flags())
	if err != nil {
		return nil, err
	}
	if _, err := cfg.Cluster(cluster); err != nil {
		return nil, err
	}
	return cfg, nil
}

// connect loads the config for a configured cluster and dials Temporal; close the client.
func connect(cmd *cobra.Command, cluster string) (*config.Config, client.Client, error) {
	cfg, err := loadCluster(cmd, cluster)
	if err != nil {
		return nil, nil, err
	}
	c, err := app.Client(cmd.Context(), cfg, quietLogger())
	return cfg, c, err
}
