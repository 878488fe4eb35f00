// Command automove measures how a memcached-protocol server's hit ratio
// survives a shift in item sizes: it fills the server with ~100-byte items,
// keeps reading and refilling them for a while, then switches to ~1 KB
// items on fewer keys, which fit in memory only if the server moves slab
// pages to their class. Every request is a get of a random key and, on a
// miss, a set of it (a cache in front of a database). It prints the hit
// ratio of the last seconds, when the server has had time to adapt.
//
// bench/automove.sh runs it against memcached and corvid with slab_automove
// on and off.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:11211", "server address")
	small := flag.Int("small-keys", 72000, "keys of the first phase (more than the memory holds)")
	large := flag.Int("large-keys", 3000, "keys of the second phase")
	smallSize := flag.Int("small-size", 100, "value bytes in the first phase")
	largeSize := flag.Int("large-size", 1000, "value bytes in the second phase")
	first := flag.Duration("first", 6*time.Second, "duration of the first phase, after the fill")
	second := flag.Duration("second", 24*time.Second, "duration of the second phase")
	late := flag.Duration("late", 6*time.Second, "the hit ratio is measured over the end of the second phase, this long")
	batch := flag.Int("batch", 100, "keys per multi-get")
	flag.Parse()
	if err := run(*addr, *small, *large, *smallSize, *largeSize, *first, *second, *late, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "automove:", err)
		os.Exit(1)
	}
}

// client is one connection: multi-gets, then the misses set with noreply.
type client struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

func dial(addr string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &client{nc: nc, r: bufio.NewReaderSize(nc, 1<<16), w: bufio.NewWriterSize(nc, 1<<16)}, nil
}

// getOrSet looks the keys up and stores the missing ones; it returns the
// number of hits.
func (c *client) getOrSet(keys []string, value []byte) (int, error) {
	c.w.WriteString("get")
	for _, k := range keys {
		c.w.WriteByte(' ')
		c.w.WriteString(k)
	}
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return 0, err
	}
	found := map[string]bool{}
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if bytes.Equal(line, []byte("END\r\n")) {
			break
		}
		f := strings.Fields(string(line))
		if len(f) < 4 || f[0] != "VALUE" {
			return 0, fmt.Errorf("unexpected reply %q", line)
		}
		n, err := strconv.Atoi(f[3])
		if err != nil {
			return 0, err
		}
		if _, err := c.r.Discard(n + 2); err != nil {
			return 0, err
		}
		found[f[1]] = true
	}
	for _, k := range keys {
		if !found[k] {
			fmt.Fprintf(c.w, "set %s 0 0 %d noreply\r\n", k, len(value))
			c.w.Write(value)
			c.w.WriteString("\r\n")
		}
	}
	return len(found), c.w.Flush()
}

// count returns how many of keys the cache holds.
func (c *client) count(keys []string) (int, error) {
	c.w.WriteString("get")
	for _, k := range keys {
		c.w.WriteByte(' ')
		c.w.WriteString(k)
	}
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return 0, err
	}
	n := 0
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if bytes.Equal(line, []byte("END\r\n")) {
			return n, nil
		}
		f := strings.Fields(string(line))
		if len(f) < 4 || f[0] != "VALUE" {
			return 0, fmt.Errorf("unexpected reply %q", line)
		}
		size, err := strconv.Atoi(f[3])
		if err != nil {
			return 0, err
		}
		if _, err := c.r.Discard(size + 2); err != nil {
			return 0, err
		}
		n++
	}
}

// stat returns one "stats" value.
func (c *client) stat(name string) (string, error) {
	c.w.WriteString("stats\r\n")
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	val := ""
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line == "END\r\n" {
			return val, nil
		}
		if f := strings.Fields(line); len(f) == 3 && f[1] == name {
			val = f[2]
		}
	}
}

func run(addr string, small, large, smallSize, largeSize int, first, second, late time.Duration, batch int) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.nc.Close()
	sv := bytes.Repeat([]byte("s"), smallSize)
	lv := bytes.Repeat([]byte("L"), largeSize)
	for i := range small {
		fmt.Fprintf(c.w, "set s%06d 0 0 %d noreply\r\n%s\r\n", i, len(sv), sv)
	}
	c.w.WriteString("version\r\n")
	if err := c.w.Flush(); err != nil {
		return err
	}
	if _, err := c.r.ReadString('\n'); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, batch)
	phase := func(d time.Duration, n int, prefix string, value []byte, measureFrom time.Duration) (hits, gets int, err error) {
		start := time.Now()
		for time.Since(start) < d {
			for i := range keys {
				keys[i] = fmt.Sprintf("%s%06d", prefix, rng.IntN(n))
			}
			h, err := c.getOrSet(keys, value)
			if err != nil {
				return 0, 0, err
			}
			if time.Since(start) >= measureFrom {
				hits += h
				gets += len(keys)
			}
		}
		return hits, gets, nil
	}
	if _, _, err := phase(first, small, "s", sv, first); err != nil {
		return err
	}
	hits, gets, err := phase(second, large, "L", lv, second-late)
	if err != nil {
		return err
	}
	moved, err := c.stat("slabs_moved")
	if err != nil {
		return err
	}
	// How many of the second phase's items the cache holds at the end.
	stored := 0
	for from := 0; from < large; from += batch {
		keys = keys[:0]
		for i := from; i < min(from+batch, large); i++ {
			keys = append(keys, fmt.Sprintf("L%06d", i))
		}
		n, err := c.count(keys)
		if err != nil {
			return err
		}
		stored += n
	}
	fmt.Printf("late_hit_ratio %.3f\n", float64(hits)/float64(max(gets, 1)))
	fmt.Printf("large_items_stored %d\n", stored)
	fmt.Printf("late_gets %d\n", gets)
	fmt.Printf("slabs_moved %s\n", moved)
	return nil
}
