// Command queueload drives a corvid queue (or Kestrel) server for
// bench/queue.sh: clients that each enqueue and dequeue items of one size
// on one queue for a while (mode pairs), or one client that enqueues a
// number of items (mode fill). It prints one line of results.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:22133", "server address")
	queue := flag.String("queue", "bench", "queue name")
	mode := flag.String("mode", "pairs", "pairs: enqueue+dequeue for -duration; fill: enqueue -n items")
	clients := flag.Int("clients", 1, "connections (mode pairs)")
	size := flag.Int("size", 100, "item size in bytes")
	pipeline := flag.Int("pipeline", 1, "requests sent before reading their replies")
	duration := flag.Duration("duration", 3*time.Second, "how long to run (mode pairs)")
	n := flag.Int("n", 100000, "items to enqueue (mode fill)")
	flag.Parse()
	if *clients < 1 || *size < 0 || *pipeline < 1 || *n < 0 {
		fmt.Fprintln(os.Stderr, "queueload: bad flags")
		os.Exit(2)
	}
	var err error
	switch *mode {
	case "pairs":
		err = pairs(*addr, *queue, *clients, *size, *pipeline, *duration)
	case "fill":
		err = fill(*addr, *queue, *size, *pipeline, *n)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "queueload:", err)
		os.Exit(1)
	}
}

// client is one text-protocol connection.
type client struct {
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	set []byte // one encoded set request
	get []byte
}

func dial(addr, queue string, size int) (*client, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	data := bytes.Repeat([]byte{'x'}, size)
	set := fmt.Appendf(nil, "set %s 0 0 %d\r\n%s\r\n", queue, size, data)
	return &client{
		nc: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 64<<10),
		set: set, get: []byte("get " + queue + "\r\n"),
	}, nil
}

func (c *client) line() ([]byte, error) {
	l, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}

// sets sends k sets and reads their replies.
func (c *client) sets(k int) error {
	for range k {
		c.w.Write(c.set)
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	for range k {
		l, err := c.line()
		if err != nil {
			return err
		}
		if string(l) != "STORED" {
			return fmt.Errorf("set: %q", l)
		}
	}
	return nil
}

// gets sends k gets and returns how many found an item.
func (c *client) gets(k int) (int, error) {
	for range k {
		c.w.Write(c.get)
	}
	if err := c.w.Flush(); err != nil {
		return 0, err
	}
	hits := 0
	for range k {
		l, err := c.line()
		if err != nil {
			return hits, err
		}
		if string(l) == "END" {
			continue
		}
		f := bytes.Fields(l)
		if len(f) != 4 || string(f[0]) != "VALUE" {
			return hits, fmt.Errorf("get: %q", l)
		}
		size, err := strconv.Atoi(string(f[3]))
		if err != nil {
			return hits, fmt.Errorf("get: %q", l)
		}
		if _, err := c.r.Discard(size + 2); err != nil {
			return hits, err
		}
		if l, err := c.line(); err != nil || string(l) != "END" {
			return hits, errors.Join(err, fmt.Errorf("get: %q after the value", l))
		}
		hits++
	}
	return hits, nil
}

func pairs(addr, queue string, clients, size, pipeline int, d time.Duration) error {
	var enq, deq atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	stop := time.Now().Add(d)
	start := time.Now()
	for range clients {
		c, err := dial(addr, queue, size)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.nc.Close()
			for time.Now().Before(stop) {
				if err := c.sets(pipeline); err != nil {
					errs <- err
					return
				}
				enq.Add(int64(pipeline))
				h, err := c.gets(pipeline)
				deq.Add(int64(h))
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	fmt.Printf("clients=%d size=%d pipeline=%d enqueues/s=%.0f dequeues/s=%.0f pairs/s=%.0f\n",
		clients, size, pipeline, float64(enq.Load())/el, float64(deq.Load())/el,
		float64(min(enq.Load(), deq.Load()))/el)
	return nil
}

func fill(addr, queue string, size, pipeline, n int) error {
	c, err := dial(addr, queue, size)
	if err != nil {
		return err
	}
	defer c.nc.Close()
	start := time.Now()
	for done := 0; done < n; {
		k := min(pipeline, n-done)
		if err := c.sets(k); err != nil {
			return err
		}
		done += k
	}
	fmt.Printf("filled=%d size=%d seconds=%.2f\n", n, size, time.Since(start).Seconds())
	return nil
}
