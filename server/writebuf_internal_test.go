package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/storage"
)

// TestWriteBufMemLimit checks that the replies held for clients that do
// not read stay within write_buf_mem_limit in total: the connections
// that would pass it are closed and counted in write_buf_oom, the heap
// does not grow with the number of such clients, and a client that reads
// its replies as they come is served throughout.
func TestWriteBufMemLimit(t *testing.T) {
	const (
		limit = 4 << 20
		conns = 24
		keys  = 8
	)
	s, addr := start(t, Config{
		WriteBufMemLimit: limit,
		Storage:          storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 2 << 20},
	})
	value := bytes.Repeat([]byte("v"), 1<<20)
	if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, value, 0); err != nil {
		t.Fatal(err)
	}
	admin := dial(t, "tcp", addr)
	admin.send("stats settings\r\n")
	for l := admin.line(); l != "END"; l = admin.line() {
		if strings.HasPrefix(l, "STAT write_buf_mem_limit ") && l != fmt.Sprint("STAT write_buf_mem_limit ", limit) {
			t.Errorf("%s, want %d", l, limit)
		}
	}

	// The reader asks for the value again and again, reading each reply
	// at once, while the others fill the limit.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readerErr error
	var reads int
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			readerErr = err
			return
		}
		defer nc.Close()
		r := bufio.NewReaderSize(nc, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			nc.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(nc, "get k\r\n"); err != nil {
				readerErr = err
				return
			}
			l, err := r.ReadString('\n')
			if err != nil || l != "VALUE k 0 1048576\r\n" {
				readerErr = fmt.Errorf("reply %d: %q, %v", reads, l, err)
				return
			}
			if _, err := r.Discard(len(value) + 2); err != nil {
				readerErr = err
				return
			}
			if l, err := r.ReadString('\n'); err != nil || l != "END\r\n" {
				readerErr = fmt.Errorf("reply %d ends with %q, %v", reads, l, err)
				return
			}
			reads++
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	base := heapInuse()
	req := "get" + strings.Repeat(" k", keys) + "\r\n"
	for range conns {
		dialSmall(t, addr).send(req)
	}
	// Each client asks for 8 MB: the first few fill the limit, the
	// others are closed as they ask.
	deadline := time.Now().Add(20 * time.Second)
	for s.wbufs.oom.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if oom := settle(t, conns, func() uint64 { return s.wbufs.oom.Load() }); oom == 0 {
		t.Errorf("write_buf_oom is 0 with %d clients holding %d MB each unread", conns, keys)
	}
	if held := s.wbufs.bytes.Load(); held > limit || held == 0 {
		t.Errorf("write_buf_bytes %d, want within (0, %d]", held, limit)
	}
	if n := admin.stat("write_buf_oom"); n != fmt.Sprint(s.wbufs.oom.Load()) {
		t.Errorf("stats write_buf_oom %s, counted %d", n, s.wbufs.oom.Load())
	}
	// Unbounded, the 24 connections hold 2 MB buffers each.
	if grown := heapInuse() - base; grown > limit+12<<20 {
		t.Errorf("heap grew by %d MB for replies nobody reads (limit %d MB)", grown>>20, limit>>20)
	}
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	if readerErr != nil {
		t.Errorf("the reading client: %v", readerErr)
	}
	if reads == 0 {
		t.Errorf("the reading client got no reply")
	}
}
