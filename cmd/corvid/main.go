// Command corvid is a memcached-family caching stack: a drop-in memcached
// server and the tools around it.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is corvid's own release, set at build time with
// -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	if err := newRootCommand().Execute(); err != nil {
		if msg := err.Error(); msg != "" { // memcached refuses some without a word
			fmt.Fprintln(os.Stderr, msg)
		}
		os.Exit(exitStatus(err))
	}
}

// exitStatus is the status corvid exits with for err: the one it carries
// (memcached's sysexits codes, say), else 1.
func exitStatus(err error) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "corvid",
		Short:         "corvid is a memcached-compatible cache server and the tools around it",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServerCommand(), newProxyCommand(), newRouterCommand(), newQueueCommand(),
		newVersionCommand(), newRingCommand(), newBenchCommand(),
		newStatCommand(), newDumpCommand(), newLoadCommand(), newTopCommand(),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print corvid's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "corvid %s (memcached protocol %s)\n", version, serverVersion())
		},
	}
}
