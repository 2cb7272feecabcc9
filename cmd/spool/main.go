// Command spool is Spool's single binary: the broker (`spool serve`) and the
// command-line tools that work against Spool or any Kafka-compatible cluster.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "spool:", err)
		os.Exit(exitCode(err))
	}
}

// newRootCmd assembles the command tree. Each subcommand lives in its own file
// as a newXxxCmd constructor; add yours to the list below.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "spool",
		Short:         "Spool: a single-binary, durable, Kafka-compatible event broker and toolkit",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: 2, err: err} })
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(),
		newTopicCmd(),
		newProduceCmd(),
		newConsumeCmd(),
		newGroupCmd(),
		newDLQCmd(),
		newBenchCmd(),
		newGatewayCmd(),
		newConsoleCmd(),
		newLookbackCmd(),
		newOutboxCmd(),
		newClaimCheckCmd(),
		newUserCmd(),
		newACLCmd(),
	)
	return root
}
