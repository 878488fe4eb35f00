package client

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

func TestDialContext(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	var dials atomic.Int32
	c := newClient(t, []string{addr}, func(cfg *Config) {
		cfg.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			dials.Add(1)
			if network != "tcp" || a != addr {
				return nil, errors.New("dialled " + network + " " + a)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, a)
		}
	})
	ctx := context.Background()
	if err := c.Set(ctx, &Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("Get = %+v, %v", it, err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials, want 1 (the connection is reused)", n)
	}

	refused := errors.New("refused by the dialer")
	c2 := newClient(t, []string{addr}, func(cfg *Config) {
		cfg.DialContext = func(context.Context, string, string) (net.Conn, error) { return nil, refused }
	})
	var se *ServerError
	if _, err := c2.Get(ctx, "k"); !errors.Is(err, refused) || !errors.As(err, &se) || se.Addr != addr {
		t.Fatalf("Get through a failing dialer: %v", err)
	}
}
