package server_test

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// tlsForwarder listens on a loopback port for plain TCP clients and
// forwards each one over a TLS connection of its own to addr, so that a
// tool that speaks only plain TCP (memccapable) can test a TLS listener.
// A close from either side is passed on to the other. The listener and
// every connection end with the test. It returns the address to dial.
func tlsForwarder(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	return testutil.FakeServer(t, func(nc net.Conn) {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: testutil.DefaultTimeout}, Config: cfg}
		sc, err := d.Dial("tcp", addr)
		if err != nil {
			t.Errorf("forwarder: cannot dial %s: %v", addr, err)
			return
		}
		defer sc.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			io.Copy(nc, sc)
			nc.(*net.TCPConn).CloseWrite()
		}()
		io.Copy(sc, nc)
		sc.(*tls.Conn).CloseWrite()
		// The server closes when it reads the client's close; bound
		// the wait for one that does not.
		sc.SetReadDeadline(time.Now().Add(testutil.DefaultTimeout))
		<-done
	})
}

// TestMemccapableTLS runs memccapable through a TLS forwarder against
// corvid with -Z, where all its tests must pass as in plain TCP, and, when
// memcached was built with TLS, against memcached -Z, where every test that
// passes in plain TCP must pass over TLS too.
func TestMemccapableTLS(t *testing.T) {
	testutil.SkipInEventLoopPass(t)
	f := newTLSFiles(t)
	t.Run("corvid", func(t *testing.T) {
		addr := testutil.StartCorvid(t, server.Config{TLS: f.config()})
		requireAllPass(t, "corvid over TLS", runMemccapable(t, tlsForwarder(t, addr, f.clientConfig())))
	})
	t.Run("memcached", func(t *testing.T) {
		if testutil.MemcachedPath() == "" || !memcachedHasTLS() {
			t.Skip("memcached is not installed or was built without TLS")
		}
		plain := runMemccapable(t, testutil.StartMemcached(t)).passed()
		addr := testutil.StartMemcached(t, "-Z", "-o", "ssl_chain_cert="+f.cert+",ssl_key="+f.key)
		r := runMemccapable(t, tlsForwarder(t, addr, f.clientConfig()))
		overTLS := r.passed()
		var lost []string
		for name := range plain {
			if !overTLS[name] {
				lost = append(lost, name)
			}
		}
		if len(plain) == 0 || len(lost) > 0 {
			t.Fatalf("memcached: %d tests pass in plain TCP; over TLS these do not: %s\noutput:\n%s",
				len(plain), strings.Join(lost, ", "), r.out)
		}
	})
}

// TestDiffRandomTLS is TestDiffRandom with corvid behind a TLS listener
// (-Z), reached through a TLS forwarder: its replies must be memcached's.
// memcached itself is reached in plain TCP: 1.6.18 stalls when a TLS
// record holds more than the read it asks for (a large value followed by
// the next request), waiting for the socket while OpenSSL holds the rest.
func TestDiffRandomTLS(t *testing.T) {
	testutil.SkipInEventLoopPass(t)
	f := newTLSFiles(t)
	mc := startMemcached(t)
	cv := testutil.StartCorvid(t, server.Config{
		TLS:     f.config(),
		Storage: storage.Config{MemoryLimit: diffMemoryMB << 20, NoCrawler: true, NoLRUMaintainer: true},
	})
	diffRandom(t, tlsForwarder(t, cv, f.clientConfig()), mc, diffRunSeeds()[0])
}
