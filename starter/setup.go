package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/start"
)

func newSetup() *cobra.Command {
	var retention time.Duration
	var skipNamespace bool
	cmd := &cobra.Command{
		Use:   "setup [--retention 720h] [--skip-namespace]",
		Short: "Register Baton's namespace and search attributes on a Temporal (self-hosted or Cloud, over the config's mTLS); safe to run again",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			c, err := app.Client(cmd.Context(), cfg, quietLogger())
			if err != nil {
				return err
			}
			defer c.Close()
			ns := cfg.Temporal.Namespace
			if !skipNamespace {
				_, err := c.WorkflowService().RegisterNamespace(cmd.Context(), &workflowservice.RegisterNamespaceRequest{
					Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(retention),
					Description: "Baton: MySQL switchovers and failovers"})
				var exists *serviceerror.NamespaceAlreadyExists
				switch {
				case errors.As(err, &exists):
					fmt.Printf("namespace %s: already registered\n", ns)
				case err != nil:
					return fmt.Errorf("register namespace %s: %w (on Temporal Cloud, create the namespace in the Cloud console and run with --skip-namespace)", ns, err)
				default:
					fmt.Printf("namespace %s: registered (retention %s)\n", ns, retention)
				}
			}
			have, err := c.OperatorService().ListSearchAttributes(cmd.Context(), &operatorservice.ListSearchAttributesRequest{Namespace: ns})
			if err != nil {
				return fmt.Errorf("list the search attributes of %s: %w", ns, err)
			}
			add := map[string]enums.IndexedValueType{}
			for _, k := range start.SearchAttributes() {
				if t, ok := have.GetCustomAttributes()[k]; ok {
					if t != enums.INDEXED_VALUE_TYPE_KEYWORD {
						return fmt.Errorf("search attribute %s exists in %s as %s, not Keyword; Baton cannot use it", k, ns, t)
					}
					continue
				}
				add[k] = enums.INDEXED_VALUE_TYPE_KEYWORD
			}
			if len(add) > 0 {
				if _, err := c.OperatorService().AddSearchAttributes(cmd.Context(), &operatorservice.AddSearchAttributesRequest{
					Namespace: ns, SearchAttributes: add}); err != nil {
					return fmt.Errorf("add search attributes to %s: %w", ns, err)
				}
			}
			fmt.Printf("search attributes: %d added, %d already there\n", len(add), len(start.SearchAttributes())-len(add))
			return nil
		},
	}
	cmd.Flags().DurationVar(&retention, "retention", 30*24*time.Hour, "how long closed workflow histories are kept (postmortems replay them)")
	cmd.Flags().BoolVar(&skipNamespace, "skip-namespace", false, "the namespace exists already (Temporal Cloud: created in its console)")
	return cmd
}
