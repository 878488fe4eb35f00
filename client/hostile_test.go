package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
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

// A server can declare a value of up to 1 GiB and send nothing of it: the
// client allocates as the bytes arrive, not what the header says.
func TestHugeDeclaredLength(t *testing.T) {
	const huge = 1 << 30
	addr := scriptedServer(t, func(line string, _ *bufio.Reader) string {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "gets":
			return fmt.Sprintf("VALUE %s 0 %d 1\r\nabc", f[1], huge)
		case len(f) >= 2 && f[0] == "mg":
			ret := ""
			for _, fl := range f[2:] {
				if fl[0] == 'O' {
					ret = " " + fl
				}
			}
			return fmt.Sprintf("VA %d k%s%s\r\nabc", huge, f[1], ret)
		}
		return "ERROR\r\n"
	})
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
	ctx := context.Background()
	calls := map[string]func() error{
		"Get": func() error { _, err := c.Get(ctx, "k"); return err },
		"GetMulti": func() error {
			_, err := c.GetMulti(ctx, []string{"k"})
			return err
		},
		"MetaGet": func() error { _, err := c.MetaGet(ctx, "k", MetaGetOptions{}); return err },
		"MetaGetMulti": func() error {
			_, err := c.MetaGetMulti(ctx, []string{"k"})
			return err
		},
	}
	for name, call := range calls {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := call()
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s of a value that never comes succeeded", name)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
			t.Errorf("%s allocated %d MB for a value of which 3 bytes came", name, n>>20)
		}
	}
}

// Values longer than what is allocated ahead of their bytes are read whole.
func TestLargeValues(t *testing.T) {
	value := make([]byte, 3*valueAllocAhead+7)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	addr := scriptedServer(t, func(line string, _ *bufio.Reader) string {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "gets":
			return fmt.Sprintf("VALUE %s 0 %d 1\r\n%s\r\nEND\r\n", f[1], len(value), value)
		case len(f) >= 2 && f[0] == "mg":
			ret := ""
			for _, fl := range f[2:] {
				if fl[0] == 'O' {
					ret = " " + fl
				}
			}
			end := ""
			if ret != "" {
				end = "MN\r\n"
			}
			return fmt.Sprintf("VA %d k%s%s\r\n%s\r\n%s", len(value), f[1], ret, value, end)
		}
		return ""
	})
	c := newClient(t, []string{addr}, nil)
	ctx := context.Background()
	check := func(name string, it *Item, err error) {
		t.Helper()
		if err != nil || it == nil || !bytes.Equal(it.Value, value) {
			t.Errorf("%s: %s", name, describe(it, err))
		}
	}
	it, err := c.Get(ctx, "k")
	check("Get", it, err)
	m, err := c.GetMulti(ctx, []string{"k"})
	check("GetMulti", m["k"], err)
	mi, err := c.MetaGet(ctx, "k", MetaGetOptions{})
	if err != nil {
		t.Errorf("MetaGet: %v", err)
	} else {
		check("MetaGet", &mi.Item, nil)
	}
	m, err = c.MetaGetMulti(ctx, []string{"k"})
	check("MetaGetMulti", m["k"], err)
}

// Calls cancelled at random moments, and a Close racing them, leave no
// connection open on the server once they return.
func TestNoConnectionLeft(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		addr := addrs[0]
		probe := newClient(t, []string{addr}, nil)
		idle := curConns(t, probe, addr)
		c := newClient(t, []string{addr}, func(cfg *Config) { cfg.MaxIdleConns = 2 })
		keys := make([]string, 50)
		for i := range keys {
			keys[i] = fmt.Sprint("leak:", i)
			if err := c.Set(context.Background(), &Item{Key: keys[i], Value: bytes.Repeat([]byte("v"), 3000)}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration((i*7+w)%2000)*time.Microsecond)
					switch i % 4 {
					case 0:
						c.Get(ctx, keys[i%len(keys)])
					case 1:
						c.GetMulti(ctx, keys)
					case 2:
						c.MetaGetMulti(ctx, keys)
					case 3:
						c.Set(ctx, &Item{Key: keys[i%len(keys)], Value: []byte("v")})
					}
					cancel()
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				c.GetMulti(context.Background(), keys)
			}
			c.Close()
		}()
		wg.Wait()
		var n string
		testutil.WaitFor(t, func() bool {
			n = curConns(t, probe, addr)
			return n == idle
		})
	})
}

// curConns returns the server's curr_connections, asked on probe's
// connection.
func curConns(t *testing.T, probe *Client, addr string) string {
	t.Helper()
	st, err := probe.Stats(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return st[addr]["curr_connections"]
}
