package client_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	"github.com/corvidcache/corvid/client"
	"github.com/corvidcache/corvid/server"
)

// startServers starts n in-process corvid servers on free loopback ports,
// standing in for a memcached pool.
func startServers(n int) (servers []client.Server, stop func()) {
	var stops []func()
	for range n {
		srv, err := server.New(server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
		if err != nil {
			log.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { srv.Serve(ctx); close(done) }()
		stops = append(stops, func() { cancel(); srv.Close(); <-done })
		servers = append(servers, client.Server{Addr: srv.Addrs()[0].String(), Weight: 1})
	}
	return servers, func() {
		for _, s := range stops {
			s()
		}
	}
}

func Example() {
	servers, stop := startServers(3)
	defer stop()

	c, err := client.New(client.Config{Servers: servers, Namespace: "app:"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if err := c.Set(ctx, &client.Item{Key: "greeting", Value: []byte("hello"), Expiration: 60}); err != nil {
		log.Fatal(err)
	}
	it, err := c.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(it.Value))
	_, err = c.Get(ctx, "absent")
	fmt.Println(err == client.ErrCacheMiss)
	// Output:
	// hello
	// true
}

func ExampleClient_GetMulti() {
	servers, stop := startServers(3)
	defer stop()
	c, err := client.New(client.Config{Servers: servers})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		c.Set(ctx, &client.Item{Key: k, Value: []byte("value of " + k)})
	}
	items, err := c.GetMulti(ctx, []string{"a", "b", "c", "d"})
	if err != nil {
		log.Fatal(err)
	}
	var keys []string
	for k := range items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("%s=%s\n", k, items[k].Value)
	}
	// Output:
	// a=value of a
	// b=value of b
	// c=value of c
}

func ExampleClient_CompareAndSwap() {
	servers, stop := startServers(1)
	defer stop()
	c, err := client.New(client.Config{Servers: servers})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	c.Set(ctx, &client.Item{Key: "counter", Value: []byte("1")})

	it, _ := c.Get(ctx, "counter")
	it.Value = []byte("2")
	fmt.Println(c.CompareAndSwap(ctx, it))
	it.Value = []byte("3") // it.CAS is stale now
	fmt.Println(c.CompareAndSwap(ctx, it))
	// Output:
	// <nil>
	// client: compare-and-swap conflict
}

func ExampleConfig_replicas() {
	servers, stop := startServers(3)
	defer stop()
	// Keys under "hot:" are written to 2 servers and read from either.
	c, err := client.New(client.Config{
		Servers:     servers,
		Replicas:    []client.Replica{{Prefix: "hot:", Copies: 2}},
		MaxFailures: 2, OnDead: client.FailRehash,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	c.Set(ctx, &client.Item{Key: "hot:config", Value: []byte("v1")})
	it, _ := c.Get(ctx, "hot:config")
	fmt.Println(string(it.Value))
	// Output: v1
}
