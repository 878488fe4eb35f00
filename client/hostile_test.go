package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// keysOn returns n keys that c places on server idx.
func keysOn(t *testing.T, c *Client, idx, n int) []string {
	t.Helper()
	var keys []string
	for i := 0; len(keys) < n && i < 100000; i++ {
		k := fmt.Sprint("key", i)
		s, err := c.pick(k)
		if err != nil {
			t.Fatal(err)
		}
		if s.idx == idx {
			keys = append(keys, k)
		}
	}
	if len(keys) < n {
		t.Fatalf("found %d keys on server %d, want %d", len(keys), idx, n)
	}
	return keys
}

// A server that does not answer a multi-get holds up the reading of the
// other servers' replies, which are already there: they are returned, and
// the healthy servers are not counted as failing for the silent one's
// delay.
func TestGetMultiSilentServerSparesOthers(t *testing.T) {
	ctx := context.Background()
	silent := silentServer(t)
	f := startFake(t, nil)
	// MetaGetMulti reads its servers in no set order: three tries make it
	// likely that one reads the silent server first.
	for _, multi := range []string{"GetMulti", "MetaGetMulti", "MetaGetMulti", "MetaGetMulti"} {
		t.Run(multi, func(t *testing.T) {
			c := newClient(t, []string{silent, f.addr}, func(cfg *Config) {
				cfg.Timeout = 500 * time.Millisecond
				cfg.MaxFailures = 1
				cfg.FailureTimeout = time.Minute
			})
			healthy := keysOn(t, c, 1, 5)
			for _, k := range healthy {
				if err := c.Set(ctx, &Item{Key: k, Value: []byte("v" + k)}); err != nil {
					t.Fatal(err)
				}
			}
			keys := append(keysOn(t, c, 0, 5), healthy...)
			get := c.GetMulti
			if multi == "MetaGetMulti" {
				get = c.MetaGetMulti
			}
			m, err := get(ctx, keys)
			var se *ServerError
			if !errors.As(err, &se) || se.Addr != silent {
				t.Errorf("%s: %v, want an error naming the silent server", multi, err)
			}
			for _, k := range healthy {
				if it := m[k]; it == nil || string(it.Value) != "v"+k {
					t.Errorf("%s[%s] = %v, want the healthy server's value", multi, k, it)
				}
			}
			if c.servers[1].dead() {
				t.Error("the healthy server was marked dead for the silent one's delay")
			}
			if !c.servers[0].dead() {
				t.Error("the silent server was not counted")
			}
		})
	}
}
