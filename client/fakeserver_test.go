package client

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fault is what a fakeServer does to one reply.
type fault int

const (
	faultNone       fault = iota
	faultUnexpected       // an unexpected line before the reply
	faultTrailing         // an unexpected line after the reply
	faultTruncate         // part of the reply, then the connection closes
	faultDelay            // the reply comes after fakeServer.delay
	faultClose            // the connection closes without a reply
	faultRefuse           // CLIENT_ERROR instead of the reply
	faultDuplicate        // the reply, and again a moment later
	numFaults
)

var faultNames = [...]string{"none", "unexpected", "trailing", "truncate", "delay", "close", "refuse", "duplicate"}

func (f fault) String() string { return faultNames[f] }

// fakeItem is a value held by a fakeServer.
type fakeItem struct {
	value []byte
	flags uint32
	cas   uint64
}

// fakeServer is an in-memory memcached on 127.0.0.1 speaking enough of the
// text and meta protocols for package client (get, gets, set, delete, mg,
// ms, md, mn, version), that can spoil any reply: pick decides, for the
// n-th request (from 0) on a connection, which fault to inject.
type fakeServer struct {
	addr  string
	ln    net.Listener
	pick  func(n int, cmd string) fault
	delay time.Duration // how long faultDelay holds a reply

	mu    sync.Mutex // guards items, cas, conns
	items map[string]fakeItem
	cas   uint64
	conns map[net.Conn]struct{}

	accepted atomic.Int64
	requests atomic.Int64
	done     chan struct{}
	wg       sync.WaitGroup
}

// startFake starts a fakeServer; pick may be nil for no faults. It stops
// with the test.
func startFake(t testing.TB, pick func(n int, cmd string) fault) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if pick == nil {
		pick = func(int, string) fault { return faultNone }
	}
	f := &fakeServer{addr: ln.Addr().String(), ln: ln, pick: pick, delay: time.Second,
		items: map[string]fakeItem{}, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) close() {
	select {
	case <-f.done:
		return
	default:
	}
	close(f.done)
	f.ln.Close()
	f.mu.Lock()
	for nc := range f.conns {
		nc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeServer) accept() {
	defer f.wg.Done()
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		select {
		case <-f.done:
			f.mu.Unlock()
			nc.Close()
			return
		default:
		}
		f.conns[nc] = struct{}{}
		f.mu.Unlock()
		f.accepted.Add(1)
		f.wg.Add(1)
		go f.serve(nc)
	}
}

func (f *fakeServer) serve(nc net.Conn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, nc)
		f.mu.Unlock()
		nc.Close()
	}()
	r := bufio.NewReader(nc)
	for n := 0; ; n++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f.requests.Add(1)
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		reply, ok := f.answer(r, fields)
		if !ok {
			return
		}
		fl := f.pick(n, fields[0])
		switch fl {
		case faultUnexpected:
			reply = append([]byte("STAT unexpected 1\r\n"), reply...)
		case faultTrailing:
			reply = append(reply, "ITEM trailing [1 b; 0 s]\r\n"...)
		case faultTruncate:
			if len(reply) > 1 {
				nc.Write(reply[:len(reply)/2])
			}
			return
		case faultDelay:
			select {
			case <-time.After(f.delay):
			case <-f.done:
				return
			}
		case faultClose:
			return
		case faultRefuse:
			reply = []byte("CLIENT_ERROR bad command line format\r\n")
		}
		if len(reply) > 0 {
			if _, err := nc.Write(reply); err != nil {
				return
			}
		}
		if fl == faultDuplicate && len(reply) > 0 {
			// Late enough for the client to have sent its next request.
			select {
			case <-time.After(time.Millisecond):
			case <-f.done:
				return
			}
			if _, err := nc.Write(reply); err != nil {
				return
			}
		}
	}
}

// answer executes one request, reading its data block from r, and returns
// the reply; ok is false when the connection is to be closed.
func (f *fakeServer) answer(r *bufio.Reader, fields []string) (reply []byte, ok bool) {
	data := func(s string) ([]byte, bool) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1<<20 {
			return nil, false
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil || !bytes.HasSuffix(b, crlf) {
			return nil, false
		}
		return b[:n], true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var w []byte
	switch cmd, args := fields[0], fields[1:]; cmd {
	case "get", "gets":
		for _, k := range args {
			if it, ok := f.items[k]; ok {
				w = append(w, "VALUE "+k+" "+strconv.FormatUint(uint64(it.flags), 10)+" "+strconv.Itoa(len(it.value))...)
				if cmd == "gets" {
					w = append(w, " "+strconv.FormatUint(it.cas, 10)...)
				}
				w = append(append(append(w, crlf...), it.value...), crlf...)
			}
		}
		return append(w, endLine...), true
	case "set":
		if len(args) < 4 {
			return []byte("ERROR\r\n"), true
		}
		flags, _ := strconv.ParseUint(args[1], 10, 32)
		v, ok := data(args[3])
		if !ok {
			return nil, false
		}
		f.cas++
		f.items[args[0]] = fakeItem{v, uint32(flags), f.cas}
		return []byte("STORED\r\n"), true
	case "delete":
		if len(args) < 1 {
			return []byte("ERROR\r\n"), true
		}
		if _, ok := f.items[args[0]]; !ok {
			return []byte("NOT_FOUND\r\n"), true
		}
		delete(f.items, args[0])
		return []byte("DELETED\r\n"), true
	case "version":
		return []byte("VERSION 1.6.18\r\n"), true
	case "mn":
		return []byte("MN\r\n"), true
	case "mg", "ms", "md":
		if len(args) < 1 || cmd == "ms" && len(args) < 2 {
			return []byte("CLIENT_ERROR bad command line format\r\n"), true
		}
		key, flags := args[0], args[1:]
		var v []byte
		if cmd == "ms" {
			var ok bool
			if v, ok = data(args[1]); !ok {
				return nil, false
			}
			flags = args[2:]
		}
		quiet, ret := false, ""
		var itemFlags uint64
		for _, fl := range flags {
			switch fl[0] {
			case 'q':
				quiet = true
			case 'O':
				ret += " " + fl
			case 'k':
				ret += " k" + key
			case 'F':
				itemFlags, _ = strconv.ParseUint(fl[1:], 10, 32)
			}
		}
		it, hit := f.items[key]
		switch cmd {
		case "ms":
			f.cas++
			f.items[key] = fakeItem{v, uint32(itemFlags), f.cas}
			if quiet {
				return nil, true
			}
			return []byte("HD" + ret + "\r\n"), true
		case "md":
			if !hit {
				return []byte("NF" + ret + "\r\n"), true
			}
			delete(f.items, key)
			if quiet {
				return nil, true
			}
			return []byte("HD" + ret + "\r\n"), true
		}
		if !hit {
			if quiet {
				return nil, true
			}
			return []byte("EN" + ret + "\r\n"), true
		}
		w = append(w, "VA "+strconv.Itoa(len(it.value))...)
		for _, fl := range flags {
			switch fl[0] {
			case 'f':
				w = append(w, " f"+strconv.FormatUint(uint64(it.flags), 10)...)
			case 'c':
				w = append(w, " c"+strconv.FormatUint(it.cas, 10)...)
			case 't':
				w = append(w, " t-1"...)
			}
		}
		w = append(append(append(append(w, ret...), crlf...), it.value...), crlf...)
		return w, true
	}
	return []byte("ERROR\r\n"), true
}
