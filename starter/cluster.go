package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/catalog"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/onboard"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/topology"
)

func newCluster() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster add|list|show|set|remove", Short: "Onboard, list, change and remove clusters (the catalog and their topology in Consul)"}
	cmd.AddCommand(newClusterAdd(), newClusterList(), newClusterShow(), newClusterSet(), newClusterRemove())
	return cmd
}

func newClusterAdd() *cobra.Command {
	var name, primary, flavorName, defaultZone string
	var names, zones map[string]string
	var attach, sets []string
	var dryRun, initPrimary bool
	cmd := &cobra.Command{
		Use:   "add --name NAME --primary HOST:PORT [--zones ADDR=ZONE,...] [--names ADDR=NAME,...]",
		Short: "Discover a cluster from its primary, check every node, and seed its topology in Consul",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(name) {
				return usage(fmt.Errorf("--name %q is not a valid cluster name (lower-case letters, digits, - and _)", name))
			}
			cfg, s, err := store(cmd)
			if err != nil {
				return err
			}
			raw, cc, err := newSettings(cmd, cfg, s, name, flavorName, sets)
			if err != nil {
				return err
			}
			f, err := flavor.ByName(string(cc.Flavor))
			if err != nil {
				return usage(fmt.Errorf("--flavor: %w", err))
			}
			opts, err := cfg.MySQLOptions(cfg.Secrets.AdminUser, cfg.Secrets.AdminPassword)
			if err != nil {
				return err
			}
			if (initPrimary || len(attach) > 0) && !dryRun {
				if err := prepare(cmd, cfg, cc, f, opts, primary, initPrimary, attach, zones); err != nil {
					return fmt.Errorf("cluster %s: %w", name, err)
				}
			}
			req := onboard.Request{Cluster: name, Primary: primary, Names: names, Zones: zones, DefaultZone: defaultZone,
				Users: nonEmpty(cfg.Secrets.ReplUser, cfg.Secrets.HeartbeatUser)}
			p, replicas, err := onboard.Discover(cmd.Context(), req, func(addr string) (onboard.Server, error) {
				return mysqladmin.Open(addr, f, opts)
			})
			if err != nil {
				return refused(fmt.Errorf("cluster %s cannot be added; nothing was written. Fix each of these and run the command again:\n  - %s",
					name, strings.ReplaceAll(err.Error(), "\n", "\n  - ")))
			}
			fmt.Printf("cluster %s (%s): primary %s (%s, zone %s, server_id %d)\n", name, f.Name(), p.Name, p.Addr(), p.Zone, p.ServerID)
			for _, r := range replicas {
				fmt.Printf("  replica %s (%s, zone %s, server_id %d)\n", r.Name, r.Addr(), r.Zone, r.ServerID)
			}
			if dryRun {
				fmt.Println("dry run: every check passed; nothing was written")
				return nil
			}
			if err := s.Seed(cmd.Context(), name, p, replicas); errors.Is(err, topology.ErrExists) {
				return refused(err) // never overwritten: nothing was written
			} else if err != nil {
				return err
			}
			fmt.Printf("seeded %s in Consul at epoch 1\n", name)
			e := topology.CatalogEntry{Settings: raw, By: currentUser(), At: time.Now().UTC(), Change: "add"}
			switch err := s.PutCatalogEntry(cmd.Context(), name, e, 0); {
			case errors.Is(err, topology.ErrChanged):
				fmt.Printf("%s was already in the catalog (entered from a config file); its settings there are kept: `baton cluster show --name %s`\n", name, name)
			case err != nil:
				return fmt.Errorf("seeded, but not entered in the catalog (no detector watches it yet): %w; run `baton cluster remove --name %s --yes` and add it again", err, name)
			default:
				fmt.Printf("entered %s in the catalog: the detectors watch it, the workers serve it, and the remote HAProxies route it:\n", name)
				for _, h := range cc.HAProxies {
					fmt.Printf("  HAProxy %s (zone %s): writer %s, reader %s\n", h.Name, h.Zone, h.Writer, h.Reader)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "cluster name (required)")
	cmd.Flags().StringVar(&primary, "primary", "", "the primary's host:port (required)")
	cmd.Flags().StringVar(&flavorName, "flavor", "mariadb", "mariadb or mysql (default: the cluster's config)")
	cmd.Flags().StringToStringVar(&names, "names", nil, "node names by address (host:port or host), as ADDR=NAME,...")
	cmd.Flags().StringToStringVar(&zones, "zones", nil, "zones by address (host:port or host)")
	cmd.Flags().StringVar(&defaultZone, "default-zone", "", "zone of the nodes --zones does not name")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "discover and check only; write nothing")
	cmd.Flags().BoolVar(&initPrimary, "init", false, "a new cluster: make the primary writable with semi-sync on and create Baton's heartbeat schema")
	cmd.Flags().StringSliceVar(&attach, "attach", nil, "new servers (host:port,...) to make read-only replicas of the primary first")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "a setting, KEY=VALUE as in the config's clusters section (repeatable; see `baton cluster set`); by default the config file's section for the cluster, else the defaults, with frontends on every remote HAProxy at the next free port pair")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("primary")
	return cmd
}

// prepare readies new servers before discovery: --init and --attach.
func prepare(cmd *cobra.Command, cfg *config.Config, cc config.ClusterConfig, f flavor.Flavor, opts mysqladmin.Options, primary string, init bool, attach []string, zones map[string]string) error {
	p, err := mysqladmin.Open(primary, f, opts)
	if err != nil {
		return err
	}
	defer p.Close()
	servers := map[string]onboard.Admin{}
	for _, a := range attach {
		c, err := mysqladmin.Open(a, f, opts)
		if err != nil {
			return err
		}
		defer c.Close()
		servers[a] = c
	}
	zone := func(addr string) string {
		if z, ok := zones[addr]; ok {
			return z
		}
		host, _, _ := strings.Cut(addr, ":")
		return zones[host]
	}
	acks := func(addr string) bool { return cc.Acks(zone(primary), zone(addr)) }
	if err := onboard.Prepare(cmd.Context(), p, primary, init, servers, cfg.ReplicationSource, acks); err != nil {
		return err
	}
	fmt.Printf("prepared: primary %s%s, %d server(s) attached\n", primary, map[bool]string{true: " opened", false: ""}[init], len(attach))
	return nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// clusterEntry is one cluster of `baton cluster list -o json`.
type clusterEntry struct {
	Cluster   string   `json:"cluster"`
	Epoch     uint64   `json:"epoch,omitempty"`
	Primary   string   `json:"primary,omitempty"`
	PrimaryAt string   `json:"primary_addr,omitempty"`
	Replicas  []string `json:"replicas"`
	// InCatalog: the fleet runs it (watched, served, routed); a topology without an entry
	// is not run.
	InCatalog bool   `json:"in_catalog"`
	Error     string `json:"error,omitempty"`
}

func newClusterList() *cobra.Command {
	var out *output
	cmd := &cobra.Command{
		Use:   "list [-o json]",
		Short: "List the clusters in Consul: primary, replicas, epoch, and whether the catalog has them (the fleet runs them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			_, s, err := store(cmd)
			if err != nil {
				return err
			}
			names, err := s.Clusters(cmd.Context())
			if err != nil {
				return err
			}
			cat, err := s.ListCatalog(cmd.Context(), 0, 0)
			if err != nil {
				return err
			}
			for _, n := range cat.Names() {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			slices.Sort(names)
			list := make([]clusterEntry, 0, len(names))
			for _, n := range names {
				_, entry := cat.Entries[n]
				_, bad := cat.Problems[n]
				e := clusterEntry{Cluster: n, InCatalog: entry || bad, Replicas: []string{}}
				if t, err := s.Read(cmd.Context(), n); err != nil {
					e.Error = err.Error()
				} else {
					e.Epoch, e.Primary, e.PrimaryAt = t.Epoch, t.Primary.Name, t.Primary.Addr()
					for _, r := range t.Replicas {
						e.Replicas = append(e.Replicas, r.Name)
					}
				}
				list = append(list, e)
			}
			return out.print(cmd.OutOrStdout(), list, func(w io.Writer) error {
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
			})
		},
	}
	out = addOutput(cmd)
	return cmd
}

func newClusterRemove() *cobra.Command {
	var name string
	var yes bool
	cmd := &cobra.Command{
		Use:   "remove --name NAME --yes",
		Short: "Delete a cluster's topology from Consul (the servers are untouched)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(name) {
				return usage(fmt.Errorf("--name %q is not a valid cluster name", name))
			}
			if !yes {
				return refused(fmt.Errorf("removing %s deletes its topology from Consul: HAProxy stops routing to it. Add --yes to confirm", name))
			}
			cfg, s, err := store(cmd)
			if err != nil {
				return err
			}
			if _, err := s.Read(cmd.Context(), name); err != nil {
				return refusedIfUnknown(err)
			}
			c, err := app.Client(cmd.Context(), cfg, quietLogger())
			if err != nil {
				return err
			}
			defer c.Close()
			d, err := c.DescribeWorkflowExecution(cmd.Context(), start.WorkflowID(name), "")
			var nf *serviceerror.NotFound
			switch {
			case errors.As(err, &nf):
			case err != nil:
				return fmt.Errorf("cannot tell whether an operation of %s is running: %w", name, err)
			case d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
				return refused(fmt.Errorf("%s of %s is running (workflow %s); wait for it to end", d.GetWorkflowExecutionInfo().GetType().GetName(), name, start.WorkflowID(name)))
			}
			if err := s.Remove(cmd.Context(), name); err != nil {
				return err
			}
			fmt.Printf("removed %s from Consul", name)
			if _, err := cfg.Cluster(name); err == nil {
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

// newSettings are a new cluster's settings for the catalog: the config file's section for
// it, or the defaults with frontends at the next free port pair on every remote HAProxy
// registered in Consul; then each --set. Validated before anything is changed.
func newSettings(cmd *cobra.Command, cfg *config.Config, s *topology.Store, name, flavorName string, sets []string) (map[string]any, config.ClusterConfig, error) {
	var raw map[string]any
	if cc, err := cfg.Cluster(name); err == nil {
		raw = catalog.Entry(cc, "", "", time.Time{}).Settings
	} else {
		l, err := s.ListCatalog(cmd.Context(), 0, 0)
		if err != nil {
			return nil, config.ClusterConfig{}, err
		}
		hosts, err := s.HAProxies(cmd.Context())
		if err != nil {
			return nil, config.ClusterConfig{}, err
		}
		raw = map[string]any{"flavor": flavorName, "haproxies": config.EncodeSettings(config.ClusterConfig{
			HAProxies: catalog.HAProxies(hosts, catalog.FreePort(catalog.UsedPorts(l)))})["haproxies"]}
	}
	if cmd.Flags().Changed("flavor") {
		raw["flavor"] = flavorName
	}
	var problems []error
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		next, err := config.SetSetting(raw, strings.TrimSpace(k), strings.TrimSpace(v))
		if !ok {
			err = fmt.Errorf("--set %q is not KEY=VALUE", kv)
		}
		if err != nil {
			problems = append(problems, err)
			continue
		}
		raw = next
	}
	cc, err := config.DecodeSettings(name, raw)
	if err = errors.Join(append(problems, err)...); err != nil {
		return nil, cc, usage(fmt.Errorf("cluster %s: nothing was changed; fix these settings and run it again:\n  - %s", name, strings.ReplaceAll(err.Error(), "\n", "\n  - ")))
	}
	return raw, cc, nil
}
