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
