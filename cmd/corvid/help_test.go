package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestAdminHelpNamesWhatItServes checks that every daemon's --admin help
// names what the admin port serves to each of them: metrics, the
// dashboard and the profiles (and the stats JSON where there is one).
func TestAdminHelpNamesWhatItServes(t *testing.T) {
	want := []string{"/metrics", "dashboard", "/debug/pprof/"}
	for name, cmd := range map[string]*cobra.Command{
		"server": newServerCommand(), "router": newRouterCommand(), "queue": newQueueCommand(),
	} {
		f := cmd.Flags().Lookup("admin")
		if f == nil {
			t.Errorf("corvid %s has no --admin", name)
			continue
		}
		for _, w := range want {
			if !strings.Contains(f.Usage, w) {
				t.Errorf("corvid %s --admin help %q does not mention %s", name, f.Usage, w)
			}
		}
	}
	var line string
	for _, l := range strings.Split(nutcrackerUsage(), "\n") {
		if strings.Contains(l, "--admin") {
			line = l
		}
	}
	for _, w := range append(want, "/stats") {
		if !strings.Contains(line, w) {
			t.Errorf("corvid proxy --admin help %q does not mention %s", line, w)
		}
	}
}

// TestServerHelpAcceptedOptions checks that the options corvid server
// takes from memcached's command line without acting on them say so in
// their help instead of describing memcached's effect.
func TestServerHelpAcceptedOptions(t *testing.T) {
	f := newServerCommand().Flags()
	for _, name := range []string{"listen-backlog", "enable-coredumps", "lock-memory"} {
		if u := f.Lookup(name).Usage; !strings.Contains(u, "accepted") {
			t.Errorf("--%s help %q does not say the option only is accepted", name, u)
		}
	}
}

// TestToolsNameServerFlagAlike checks that the tools that talk to running
// servers call their -s flag --server, and that corvid top still reads its
// former --servers.
func TestToolsNameServerFlagAlike(t *testing.T) {
	for name, cmd := range map[string]*cobra.Command{
		"stat": newStatCommand(), "dump": newDumpCommand(), "bench": newBenchCommand(), "top": newTopCommand(),
	} {
		if f := cmd.Flags().ShorthandLookup("s"); f == nil || f.Name != "server" {
			t.Errorf("corvid %s -s is %+v, want --server", name, f)
		}
	}
	for _, args := range [][]string{{"--server", "a:1,b:2"}, {"--servers", "a:1,b:2"}, {"-s", "a:1", "-s", "b:2"}} {
		cmd := newTopCommand()
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatalf("top %q: %v", args, err)
		}
		got, _ := cmd.Flags().GetStringSlice("server")
		if strings.Join(got, ",") != "a:1,b:2" {
			t.Errorf("top %q: servers %q", args, got)
		}
	}
}
