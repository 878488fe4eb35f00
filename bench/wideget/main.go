// Command wideget times one wide multi-get: it stores -keys items of
// -size bytes through the server (or proxy) at -addr, then sends
// "get k1 … kN" -rounds times, one at a time on one connection, and checks
// that every key comes back. It prints the median, the fastest and the
// slowest time of one get in microseconds as "name value" lines.
//
// Usage:
//
//	wideget -addr 127.0.0.1:22121 -keys 10000 -size 100 -rounds 20
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:11211", "server TCP address")
	keys := flag.Int("keys", 10000, "keys per get")
	size := flag.Int("size", 100, "value size in bytes")
	rounds := flag.Int("rounds", 20, "gets timed")
	prefix := flag.String("prefix", "wide:", "key prefix")
	flag.Parse()
	if err := run(*addr, *keys, *size, *rounds, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "wideget:", err)
		os.Exit(1)
	}
}

func run(addr string, nkeys, size, rounds int, prefix string) error {
	if nkeys < 1 || size < 0 || rounds < 1 {
		return errors.New("-keys and -rounds must be positive, -size not negative")
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 64<<10)

	// Store the keys: a pipeline of sets, each answered STORED.
	value := bytes.Repeat([]byte("v"), size)
	var req []byte
	get := []byte("get")
	for i := range nkeys {
		k := prefix + strconv.Itoa(i)
		req = fmt.Appendf(req, "set %s 0 0 %d\r\n%s\r\n", k, size, value)
		get = append(append(get, ' '), k...)
	}
	get = append(get, '\r', '\n')
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := nc.Write(req)
		werr <- err
	}()
	for i := range nkeys {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("set %d: %w", i, err)
		}
		if !bytes.Equal(line, []byte("STORED\r\n")) {
			return fmt.Errorf("set %d: %q", i, line)
		}
	}
	if err := <-werr; err != nil {
		return err
	}

	times := make([]time.Duration, 0, rounds)
	for range rounds {
		nc.SetDeadline(time.Now().Add(60 * time.Second))
		start := time.Now()
		if _, err := nc.Write(get); err != nil {
			return err
		}
		hits, err := readValues(r)
		if err != nil {
			return err
		}
		times = append(times, time.Since(start))
		if hits != nkeys {
			return fmt.Errorf("get returned %d of %d keys", hits, nkeys)
		}
	}
	slices.Sort(times)
	us := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) }
	fmt.Printf("keys %d\nrounds %d\nmedian_us %s\nmin_us %s\nmax_us %s\n",
		nkeys, rounds, us(times[len(times)/2]), us(times[0]), us(times[len(times)-1]))
	return nil
}

// readValues reads VALUE blocks up to END and returns how many there were.
func readValues(r *bufio.Reader) (int, error) {
	hits := 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return hits, err
		}
		if bytes.Equal(line, []byte("END\r\n")) {
			return hits, nil
		}
		f := bytes.Fields(line)
		if len(f) < 4 || !bytes.Equal(f[0], []byte("VALUE")) {
			return hits, fmt.Errorf("unexpected reply %q", line)
		}
		n, err := strconv.Atoi(string(f[3]))
		if err != nil || n < 0 {
			return hits, fmt.Errorf("bad VALUE line %q", line)
		}
		if _, err := r.Discard(n + 2); err != nil {
			return hits, err
		}
		hits++
	}
}
