package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// metaClient returns a client for addrs, skipping the test when the server
// does not speak the meta protocol (memcached before 1.6).
func metaClient(t *testing.T, addrs []string) *Client {
	t.Helper()
	c := newClient(t, addrs, nil)
	if err := c.MetaNoop(context.Background(), "k"); errors.Is(err, ErrNotSupported) {
		t.Skip("server answers mn with ERROR")
	} else if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMetaStaleWhileRevalidate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := metaClient(t, addrs)
		if _, err := c.MetaGet(ctx, "absent", MetaGetOptions{}); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("miss: %v", err)
		}
		if err := c.MetaSet(ctx, &Item{Key: "page", Value: []byte("v1"), Flags: 5, Expiration: 600}, MetaSetOptions{}); err != nil {
			t.Fatal(err)
		}
		mi, err := c.MetaGet(ctx, "page", MetaGetOptions{})
		if err != nil || string(mi.Value) != "v1" || mi.Flags != 5 || mi.Stale || mi.Won || mi.TTL <= 0 || mi.TTL > 600 {
			t.Fatalf("fresh = %+v, %v", mi, err)
		}
		// Invalidate: readers keep the old value, exactly one wins.
		if err := c.MetaDelete(ctx, "page", MetaDeleteOptions{Invalidate: true, TTL: 30}); err != nil {
			t.Fatal(err)
		}
		first, err := c.MetaGet(ctx, "page", MetaGetOptions{})
		if err != nil || string(first.Value) != "v1" || !first.Stale || !first.Won {
			t.Fatalf("first reader after invalidation = %+v, %v", first, err)
		}
		second, err := c.MetaGet(ctx, "page", MetaGetOptions{})
		if err != nil || string(second.Value) != "v1" || !second.Stale || second.Won || !second.WinPending {
			t.Fatalf("second reader = %+v, %v", second, err)
		}
		// The winner stores the recomputed value with the CAS it read.
		if err := c.MetaSet(ctx, &Item{Key: "page", Value: []byte("v2"), Expiration: 600}, MetaSetOptions{CAS: first.CAS, Invalidate: true}); err != nil {
			t.Fatal(err)
		}
		mi, err = c.MetaGet(ctx, "page", MetaGetOptions{})
		if err != nil || string(mi.Value) != "v2" || mi.Stale || mi.Won {
			t.Fatalf("after recache = %+v, %v", mi, err)
		}
		// A stale CAS conflicts.
		if err := c.MetaSet(ctx, &Item{Key: "page", Value: []byte("v3")}, MetaSetOptions{CAS: first.CAS}); !errors.Is(err, ErrCASConflict) {
			t.Fatalf("old CAS: %v", err)
		}
		// Early recache: one caller wins when the TTL is below the threshold.
		c.MetaSet(ctx, &Item{Key: "short", Value: []byte("s"), Expiration: 20}, MetaSetOptions{})
		a, _ := c.MetaGet(ctx, "short", MetaGetOptions{RecacheBelow: 30})
		b, _ := c.MetaGet(ctx, "short", MetaGetOptions{RecacheBelow: 30})
		if a == nil || b == nil || !a.Won || b.Won || !b.WinPending {
			t.Fatalf("recache below TTL: %+v %+v", a, b)
		}
		// Vivify: the first reader of a missing key wins a placeholder.
		v1, err := c.MetaGet(ctx, "vivid", MetaGetOptions{Vivify: 30})
		if err != nil || !v1.Won {
			t.Fatalf("vivify first = %+v, %v", v1, err)
		}
		v2, err := c.MetaGet(ctx, "vivid", MetaGetOptions{Vivify: 30})
		if err != nil || v2.Won {
			t.Fatalf("vivify second = %+v, %v", v2, err)
		}
		// Plain delete.
		if err := c.MetaDelete(ctx, "page", MetaDeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.MetaDelete(ctx, "page", MetaDeleteOptions{}); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("delete twice: %v", err)
		}
	})
}

func TestMetaGetMulti(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := metaClient(t, addrs)
		var keys []string
		for i := range 150 {
			k := fmt.Sprint("mk", i)
			keys = append(keys, k)
			if i%2 == 0 {
				c.Set(ctx, &Item{Key: k, Value: []byte(k), Flags: uint32(i) << 2})
			}
		}
		m, err := c.MetaGetMulti(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 75 {
			t.Fatalf("%d items, want 75", len(m))
		}
		for i, k := range keys {
			it, ok := m[k]
			if ok != (i%2 == 0) || ok && (string(it.Value) != k || it.Flags != uint32(i)<<2 || it.CAS == 0) {
				t.Fatalf("%s: %+v", k, it)
			}
		}
		// The connections stay in step.
		if it, err := c.Get(ctx, "mk0"); err != nil || string(it.Value) != "mk0" {
			t.Fatalf("Get after MetaGetMulti = %+v, %v", it, err)
		}
	})
}

// startPreMeta serves the text protocol as a memcached older than 1.6
// does: set and get on one key space, ERROR for any other command line
// (the meta commands among them, and a data block read as a command).
func startPreMeta(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	var mu sync.Mutex
	items := map[string]string{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				r := bufio.NewReader(nc)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					f := strings.Fields(line)
					reply := "ERROR\r\n"
					switch {
					case len(f) == 5 && f[0] == "set":
						n, _ := strconv.Atoi(f[4])
						data := make([]byte, n+2)
						if _, err := io.ReadFull(r, data); err != nil {
							return
						}
						mu.Lock()
						items[f[1]] = string(data[:n])
						mu.Unlock()
						reply = "STORED\r\n"
					case len(f) >= 2 && (f[0] == "get" || f[0] == "gets"):
						reply = ""
						mu.Lock()
						for _, k := range f[1:] {
							if v, ok := items[k]; ok {
								reply += fmt.Sprintf("VALUE %s 0 %d 1\r\n%s\r\n", k, len(v), v)
							}
						}
						mu.Unlock()
						reply += "END\r\n"
					}
					if _, err := io.WriteString(nc, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestMetaUnsupported runs the meta operations against a server without
// the meta protocol: they fail with ErrNotSupported, and the connection
// still serves the text protocol afterwards.
func TestMetaUnsupported(t *testing.T) {
	c := newClient(t, []string{startPreMeta(t)}, nil)
	ctx := context.Background()
	if err := c.MetaNoop(ctx, "k"); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("MetaNoop: %v", err)
	}
	if _, err := c.MetaGet(ctx, "k", MetaGetOptions{}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("MetaGet: %v", err)
	}
	if err := c.MetaSet(ctx, &Item{Key: "k", Value: []byte("v")}, MetaSetOptions{}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("MetaSet: %v", err)
	}
	// The text protocol still works afterwards.
	if err := c.Set(ctx, &Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("Get = %+v, %v", it, err)
	}
}

// TestMetaBase64Key checks that an item stored under a binary key (the b
// flag, which another client may use) is read by its bytes: the server
// shows its key in base64 in the k flag of a reply, with the b flag, and
// that is still the key asked for, not a reply for another key.
func TestMetaBase64Key(t *testing.T) {
	// A base64 key that decodes to another key, or to nothing, is still
	// another key.
	for _, reply := range []string{"k" + base64.StdEncoding.EncodeToString([]byte("bin:2")) + " b O1", "kbin:1 b O1", "k$$$$ b O1"} {
		f, err := parseMetaFlags([]byte(reply))
		if err == nil && checkReply(&f, "bin:1", 1) == nil {
			t.Errorf("reply flags %q taken for key bin:1", reply)
		}
	}
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := metaClient(t, addrs[:1])
		if err := c.Set(ctx, &Item{Key: "plain", Value: []byte("p")}); err != nil {
			t.Fatal(err)
		}
		raw := testutil.Dial(t, addrs[0])
		defer raw.Close()
		raw.Send([]byte("ms " + base64.StdEncoding.EncodeToString([]byte("bin:1")) + " 3 b T0\r\nabc\r\n"))
		if r := raw.ReadReply(testutil.LineReply); string(r) != "HD\r\n" {
			t.Fatalf("ms with a base64 key: %q", r)
		}
		mi, err := c.MetaGet(ctx, "bin:1", MetaGetOptions{})
		if err != nil || string(mi.Value) != "abc" {
			t.Errorf("MetaGet = %+v, %v; want abc", mi, err)
		}
		m, err := c.MetaGetMulti(ctx, []string{"plain", "bin:1"})
		if err != nil || len(m) != 2 || string(m["plain"].Value) != "p" || string(m["bin:1"].Value) != "abc" {
			t.Errorf("MetaGetMulti = %v, %v; want both", m, err)
		}
	})
}
