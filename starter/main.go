// Command baton is the operator's CLI: switchovers, failovers, status.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, newRoot())
	stop()
	os.Exit(code)
}

// execute runs the command line and returns the exit code (exit.go), printing the error
// as "baton: ...". An error before any verb ran (cobra's: an unknown verb or flag, a
// missing required flag, wrong arguments) is a usage error.
func execute(ctx context.Context, root *cobra.Command) int {
	ran := false
	markRun(root, &ran)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "baton:", err)
	if !ran {
		return exitUsage
	}
	return exitCode(err)
}

// markRun wraps every verb's RunE to record that it ran.
func markRun(c *cobra.Command, ran *bool) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}
