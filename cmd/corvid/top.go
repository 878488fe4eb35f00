package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/corvidcache/corvid/internal/top"
)

// topOptions holds corvid top's command line.
type topOptions struct {
	servers  []string
	interval time.Duration
}

func newTopCommand() *cobra.Command {
	o := &topOptions{}
	cmd := &cobra.Command{
		Use:   "top [-s host:port,...] [--interval 1s]",
		Short: "Watch memcached-protocol servers live: ops/s, hit ratio, memory, slab classes, hot keys",
		Long: `corvid top shows one tab per server (corvid or memcached): operations per
second by command, hit ratio, evictions, memory, connections, the slab class
table and the hottest keys (corvid's "stats hotkeys"; on memcached, counted
from a short "watch fetchers" window each interval).

Keys: q quit, s cycle the sort column of the class table, p pause,
tab next server (shift+tab the previous one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addrs, err := topServers(o.servers)
			if err != nil {
				return err
			}
			if o.interval < 10*time.Millisecond {
				return usageError("--interval must be at least 10ms")
			}
			if !isTerminal(cmd.InOrStdin()) || !isTerminal(cmd.OutOrStdout()) {
				return errors.New("corvid top: needs a terminal on standard input and output")
			}
			m := top.New(top.Config{Servers: addrs, Interval: o.interval})
			defer m.Stop()
			p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(cmd.Context()),
				tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout()))
			if _, err := p.Run(); err != nil {
				return fmt.Errorf("corvid top: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&o.servers, "server", "s", []string{"127.0.0.1:11211"}, "servers to watch, host:port (repeatable, comma-separated)")
	// --server as corvid stat, dump and bench name it; --servers still
	// reads.
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "servers" {
			name = "server"
		}
		return pflag.NormalizedName(name)
	})
	f.DurationVar(&o.interval, "interval", time.Second, "time between polls")
	return cmd
}

// topServers checks each address is host:port, adding the port 11211
// where only a host is given.
func topServers(list []string) ([]string, error) {
	var addrs []string
	for _, a := range list {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil && !strings.Contains(a, ":") {
			host, port, err = a, "11211", nil
		}
		if err != nil || host == "" {
			return nil, usageError(fmt.Sprintf("corvid top: bad server address %q: want host:port", a))
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return nil, usageError(fmt.Sprintf("corvid top: bad port in server address %q", a))
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	if len(addrs) == 0 {
		return nil, usageError("corvid top: no server given")
	}
	return addrs, nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(fd.Fd())
}
