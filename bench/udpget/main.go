// Command udpget measures UDP get throughput of a memcached-protocol
// server: it stores one item over UDP, then several clients, each with its
// own socket, send "get" requests one at a time and wait for each framed
// reply. A reply that does not come within -timeout counts as lost.
//
// The report goes to stdout as "name value" lines.
//
// Usage:
//
//	udpget -addr 127.0.0.1:11211 -clients 16 -duration 10s -size 100
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:11211", "server UDP address")
	clients := flag.Int("clients", 16, "concurrent clients, one socket each")
	duration := flag.Duration("duration", 10*time.Second, "how long to measure")
	size := flag.Int("size", 100, "value size in bytes")
	timeout := flag.Duration("timeout", 200*time.Millisecond, "wait for one reply")
	flag.Parse()
	if err := run(*addr, *clients, *duration, *size, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "udpget:", err)
		os.Exit(1)
	}
}

func run(addr string, clients int, duration time.Duration, size int, timeout time.Duration) error {
	value := strings.Repeat("v", size)
	set := fmt.Sprintf("set udpget:key 0 0 %d\r\n%s\r\n", size, value)
	want := fmt.Sprintf("VALUE udpget:key 0 %d\r\n%s\r\nEND\r\n", size, value)
	c, err := dial(addr)
	if err != nil {
		return err
	}
	if got, err := c.roundTrip(0, []byte(set), time.Second); err != nil || string(got) != "STORED\r\n" {
		return fmt.Errorf("set: %q, %v", got, err)
	}
	c.Close()

	var ok, lost, bad atomic.Int64
	stop := time.Now().Add(duration)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			req := []byte("get udpget:key\r\n")
			for id := uint16(i << 10); time.Now().Before(stop); id++ {
				got, err := c.roundTrip(id, req, timeout)
				switch {
				case err != nil:
					lost.Add(1)
				case string(got) != want:
					bad.Add(1)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("gets_per_sec %.0f\nlost %d\nbad %d\n", float64(ok.Load())/duration.Seconds(), lost.Load(), bad.Load())
	return nil
}

type client struct {
	*net.UDPConn
	buf []byte
}

func dial(addr string) (*client, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	nc, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	return &client{UDPConn: nc, buf: make([]byte, 1<<16)}, nil
}

// roundTrip sends body framed with request id and returns the reassembled
// reply.
func (c *client) roundTrip(id uint16, body []byte, timeout time.Duration) ([]byte, error) {
	d := binary.BigEndian.AppendUint16(nil, id)
	d = append(d, 0, 0, 0, 1, 0, 0)
	d = append(d, body...)
	if _, err := c.Write(d); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	var parts [][]byte
	for got := 0; ; {
		n, err := c.Read(c.buf)
		if err != nil {
			return nil, err
		}
		if n < 8 || binary.BigEndian.Uint16(c.buf) != id {
			continue // a late reply to an earlier request
		}
		seq, total := int(binary.BigEndian.Uint16(c.buf[2:])), int(binary.BigEndian.Uint16(c.buf[4:]))
		if parts == nil {
			parts = make([][]byte, total)
		}
		if seq >= len(parts) || total != len(parts) {
			return nil, errors.New("bad sequence")
		}
		if parts[seq] == nil {
			parts[seq] = bytes.Clone(c.buf[8:n])
			if got++; got == total {
				return bytes.Join(parts, nil), nil
			}
		}
	}
}
