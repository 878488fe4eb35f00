package proxy

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestStatsServerNamesAsNutcracker checks the names the stats give
// servers: nutcracker's, the names that place keys on its continuum (the
// host alone on memcached's port, the port as written, "path:" for a
// socket), as nutcracker 0.5.0's stats JSON shows them.
func TestStatsServerNamesAsNutcracker(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	p := serveProxy(t, Config{}, "alpha:\n  listen: 127.0.0.1:0\n  servers:\n"+
		"   - 127.0.0.1:11211:1\n"+
		"   - 127.0.0.1:011212:1\n"+
		"   - ::1:11211:1\n"+
		"   - "+sock+":1\n"+
		"   - 127.0.0.1:11213:1 named\n")
	var got []string
	for _, s := range p.Stats().Pools[0].Servers {
		got = append(got, s.Name)
	}
	slices.Sort(got)
	want := []string{"127.0.0.1", "127.0.0.1:011212", "::1", sock + ":", "named"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("server names %q, want %q", got, want)
	}
}
