// Command idleconns opens -conns connections to a memcached-protocol
// server or proxy, checks each with one "get" (answered by any server and
// by nutcracker, which closes a connection that sends "version"), prints
// "open N" once all are open and checked, then holds them idle for -hold
// and closes them. bench/proxy.sh samples the server's RSS after "open".
//
// Usage:
//
//	idleconns -addr 127.0.0.1:22121 -conns 10000 -hold 30s
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:11211", "server TCP address")
	conns := flag.Int("conns", 10000, "connections to open")
	hold := flag.Duration("hold", 30*time.Second, "how long to hold them open")
	flag.Parse()
	if err := run(*addr, *conns, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
}

func run(addr string, n int, hold time.Duration) error {
	open := make([]net.Conn, 0, n)
	defer func() {
		for _, nc := range open {
			nc.Close()
		}
	}()
	req := []byte("get idleconns:check\r\n")
	want := []byte("END\r\n")
	got := make([]byte, len(want))
	for i := range n {
		nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		open = append(open, nc)
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(req); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		if _, err := io.ReadFull(nc, got); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("connection %d: reply %q", i, got)
		}
		nc.SetDeadline(time.Time{})
	}
	fmt.Printf("open %d\n", n)
	time.Sleep(hold)
	return nil
}
