// Command idleconns opens -conns connections to a memcached-protocol
// server or proxy, prints "open N" once the server holds all of them, then
// holds them idle for -hold and closes them. bench/proxy.sh samples the
// server's RSS after "open".
//
// With -mode silent (the default) the connections send nothing; once they
// are open, one more connection sends a "get" (answered by any server and
// by nutcracker, which closes a connection that sends "version") and waits
// for its END: the server accepts its connections in the order they
// arrive, so it has accepted all the others by then. With -mode used each
// connection first sends what a pooled client's connection has sent
// before it sits idle, and reads every reply: a set of a 100-byte value, a
// get of it, and a get of 16 keys (spread over a proxy's servers).
//
// Usage:
//
//	idleconns -addr 127.0.0.1:22121 -conns 10000 -mode used -hold 30s
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

const ioTimeout = 10 * time.Second

func main() {
	addr := flag.String("addr", "127.0.0.1:11211", "server TCP address")
	conns := flag.Int("conns", 10000, "connections to open")
	mode := flag.String("mode", "silent", "silent: the connections send nothing; used: each sends a set and two gets first")
	hold := flag.Duration("hold", 30*time.Second, "how long to hold them open")
	flag.Parse()
	if *mode != "silent" && *mode != "used" {
		fmt.Fprintln(os.Stderr, "idleconns: -mode must be silent or used")
		os.Exit(2)
	}
	if err := run(*addr, *conns, *mode == "used", *hold); err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
}

func run(addr string, n int, used bool, hold time.Duration) error {
	open := make([]net.Conn, 0, n+1)
	defer func() {
		for _, nc := range open {
			nc.Close()
		}
	}()
	var buf []byte
	for i := range n {
		nc, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		open = append(open, nc)
		if used {
			if buf, err = use(nc, i, buf); err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
	}
	// The last connection's get is answered once the server has accepted
	// every connection before it.
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return fmt.Errorf("last connection: %w", err)
	}
	open = append(open, nc)
	if _, err := roundTrip(nc, []byte("get idleconns:check\r\n"), 1, buf); err != nil {
		return fmt.Errorf("last connection: %w", err)
	}
	fmt.Printf("open %d\n", n)
	time.Sleep(hold)
	return nil
}

// use sends on connection i a set, a get of its key and a get of 16 keys,
// and reads the replies; buf is scratch.
func use(nc net.Conn, i int, buf []byte) ([]byte, error) {
	var req strings.Builder
	key := fmt.Sprintf("idleconns:%d", i%16)
	fmt.Fprintf(&req, "set %s 0 0 100\r\n%s\r\nget %s\r\nget", key, strings.Repeat("x", 100), key)
	for k := range 16 {
		fmt.Fprintf(&req, " idleconns:%d", k)
	}
	req.WriteString("\r\n")
	buf, err := roundTrip(nc, []byte(req.String()), 2, buf)
	if err == nil && !bytes.HasPrefix(buf, []byte("STORED\r\n")) {
		err = fmt.Errorf("reply %.40q", buf)
	}
	return buf, err
}

// roundTrip writes req to nc and reads until the reply holds ends END
// lines, into buf (returned).
func roundTrip(nc net.Conn, req []byte, ends int, buf []byte) ([]byte, error) {
	nc.SetDeadline(time.Now().Add(ioTimeout))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(req); err != nil {
		return buf, err
	}
	end := []byte("END\r\n")
	buf = buf[:0]
	for bytes.Count(buf, end) < ends {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, fmt.Errorf("closed after %.40q", buf)
		}
		if err != nil {
			return buf, err
		}
		if bytes.Contains(buf, []byte("ERROR")) {
			return buf, fmt.Errorf("reply %.80q", buf)
		}
	}
	return buf, nil
}
