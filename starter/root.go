package main

import (
	"fmt"
	"io"

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
		newConfig(), newDowntime(), newAck(), newRecoveries(), newCluster(), newNode(), newSetup(), newVersion())
	return root
}

// versionView is `baton version -o json`.
type versionView struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Go       string `json:"go"`
}

func newVersion() *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "version [-o json]",
		Short: "Print the build of this baton (version, commit, Go); the servers export theirs as baton_build_info",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version.Get()
			return out.print(cmd.OutOrStdout(), versionView{Version: v.Version, Revision: v.Revision, Go: v.Go}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, "baton "+v.String())
				return err
			})
		},
	}
	out = addOutput(cmd)
	return cmd
}

// loadConfig loads and validates the CLI's config (app.LoadCLIConfig): the temporal
// section is all it needs, and no secrets are read. A config that does not load is a
// usage error (exit 2), nothing having been attempted.
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	cfg, err := app.LoadCLIConfig(cmd.Flags())
	if err != nil {
		return nil, usage(err)
	}
	return cfg, nil
}

// loadFullConfig loads the config with its secrets, as the worker does: only for the
// bootstrap path that connects to Consul and the databases itself (`cluster add|list
// --local`, before any worker runs).
func loadFullConfig(cmd *cobra.Command) (*config.Config, error) {
	cfg, err := app.LoadConfig(cmd.Flags())
	if err != nil {
		return nil, usage(err)
	}
	return cfg, nil
}

// loadCluster loads the config and checks the cluster's name. A config that lists
// clusters (the worker's) refuses an unknown one here (exit 3); a CLI config without
// clusters leaves that to the worker, whose steps refuse it (ErrUnknownCluster, exit 3).
func loadCluster(cmd *cobra.Command, cluster string) (*config.Config, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	if len(cfg.Clusters) == 0 {
		if !config.ValidName(cluster) {
			return nil, usage(fmt.Errorf("--cluster %q is not a valid cluster name (lower-case letters, digits, - and _)", cluster))
		}
		return cfg, nil
	}
	if _, err := cfg.Cluster(cluster); err != nil {
		return nil, refused(err)
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
