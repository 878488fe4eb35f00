package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// TestAuthFileBinaryClientNotServed checks that with an auth file and the
// protocol left to its default, a client speaking the binary protocol
// (which has no ASCII authentication) can neither read nor write items:
// the server speaks ASCII only, as memcached -Y without -B does.
func TestAuthFileBinaryClientNotServed(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{AuthFile: writeAuthFile(t, authFileText)})
	owner := testutil.Dial(t, addr)
	owner.Send([]byte("set x 0 0 12\r\nalice secret\r\nset k 0 0 9\r\ntopsecret\r\n"))
	for range 2 {
		if got := owner.ReadReply(testutil.LineReply); string(got) != "STORED\r\n" {
			t.Fatalf("authenticated set: got %q", got)
		}
	}

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	get := testutil.BinaryRequest{Opcode: 0x00, Key: []byte("k")}.Bytes()
	set := testutil.BinaryRequest{Opcode: 0x01, Extras: make([]byte, 8), Key: []byte("w"), Value: []byte("planted")}.Bytes()
	if _, err := nc.Write(append(get, set...)); err != nil {
		t.Fatal(err)
	}
	// Whatever comes back within two seconds (or until the server closes)
	// must not hold the value.
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(nc)
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		t.Logf("read: %v", err)
	}
	if bytes.Contains(got, []byte("topsecret")) {
		t.Fatalf("an unauthenticated binary client read the value: % x", got)
	}
	owner.Send([]byte("get w\r\n"))
	if got := owner.ReadReply(testutil.AnyReply); string(got) != "END\r\n" {
		t.Fatalf("an unauthenticated binary client stored an item: get w answered %q", got)
	}
}

// TestAuthFileRefusesBinaryProtocol checks that New refuses an auth file
// with the binary protocol, as memcached refuses -Y with -B binary.
func TestAuthFileRefusesBinaryProtocol(t *testing.T) {
	s, err := server.New(server.Config{AuthFile: writeAuthFile(t, authFileText), Protocol: server.ProtoBinary,
		TCPAddrs: []string{"127.0.0.1:0"}})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, server.ErrAuthNeedsASCII) {
		t.Fatalf("New error %v, want ErrAuthNeedsASCII", err)
	}
}

// TestSASLWithUDP checks that SASL and UDP are not served together, as
// memcached refuses -S with -U: all the clients of a UDP socket share one
// connection, so one client's authentication would let every other
// (spoofable) sender in. If New ever accepts the pair, a client that did
// not authenticate must still be refused.
func TestSASLWithUDP(t *testing.T) {
	pwdb := writeAuthFile(t, "alice:secret\n")
	s, err := server.New(server.Config{SASL: true, SASLPasswordDB: pwdb, UDPAddrs: []string{"127.0.0.1:0"}})
	if err == nil {
		done := make(chan error, 1)
		go func() { done <- s.Serve(context.Background()) }()
		defer func() { s.Close(); <-done }()
		addr := s.UDPAddrs()[0].String()
		alice, mallory := dialUDP(t, addr), dialUDP(t, addr)
		auth := testutil.BinaryRequest{Opcode: 0x21, Key: []byte("PLAIN"), Value: []byte("\x00alice\x00secret")}.Bytes()
		if st := udpBinaryStatus(t, alice.do(string(auth))); st != 0 {
			t.Fatalf("SASL auth over UDP: status 0x%x", st)
		}
		noop := testutil.BinaryRequest{Opcode: 0x0a}.Bytes()
		if st := udpBinaryStatus(t, mallory.do(string(noop))); st != 0x20 {
			t.Fatalf("noop from a client that did not authenticate: status 0x%x, want 0x20 (auth error)", st)
		}
		return
	}
	if !errors.Is(err, server.ErrSASLWithUDP) {
		t.Fatalf("New error %v, want ErrSASLWithUDP", err)
	}
}

// udpBinaryStatus returns the status of the binary response in a UDP
// reply.
func udpBinaryStatus(t *testing.T, parts [][]byte) uint16 {
	t.Helper()
	p := payload(parts)
	if len(p) < 24 || p[0] != 0x81 {
		t.Fatalf("not a binary response: %q", p)
	}
	return uint16(p[6])<<8 | uint16(p[7])
}

// TestTLSHandshakeTimeout checks that a client that never completes its
// TLS handshake (silent, or stopping in the middle of its hello) is closed
// once TLSConfig.HandshakeTimeout has passed, also without an idle
// timeout: with client certificates required, no other limit stops a peer
// without a certificate from holding every connection slot.
func TestTLSHandshakeTimeout(t *testing.T) {
	f := newTLSFiles(t)
	cfg := f.config()
	cfg.CAFile, cfg.VerifyMode = f.ca.file, 2
	cfg.HandshakeTimeout = time.Second
	addr := testutil.StartCorvid(t, server.Config{TLS: cfg})
	for _, sent := range []string{"", "\x16\x03\x01\x02\x00\x01"} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write([]byte(sent)); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err = io.Copy(io.Discard, nc)
		nc.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("after sending %q: still open after 20s, with a handshake timeout of 1s", sent)
		}
	}
	// A client with a certificate is served past the handshake timeout.
	c := dialTLS(t, addr, f.clientConfig(f.clientCert))
	c.Send([]byte("version\r\n"))
	c.ReadReply(testutil.LineReply)
	time.Sleep(1500 * time.Millisecond)
	c.Send([]byte("version\r\n"))
	if got, err := c.TryReadReply(testutil.LineReply); err != nil || !strings.HasPrefix(string(got), "VERSION ") {
		t.Fatalf("served client after the handshake timeout: %q, %v", got, err)
	}
}

// TestTLSResumptionAfterCARefresh checks that once refresh_certs has
// replaced the CA file, a client whose certificate the new CAs do not
// accept cannot get in again by resuming a session (ssl_session_cache)
// it was given before.
func TestTLSResumptionAfterCARefresh(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		f := newTLSFiles(t)
		cfg := f.config()
		cfg.CAFile, cfg.VerifyMode, cfg.SessionCache = f.ca.file, 2, true
		addr := testutil.StartCorvid(t, server.Config{TLS: cfg})
		client := f.clientConfig(f.clientCert)
		client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		client.MinVersion, client.MaxVersion = v, v
		// The second connection resumes the first's session.
		first := dialTLS(t, addr, client)
		first.Send([]byte("version\r\n"))
		first.ReadReply(testutil.LineReply)
		first.Close()
		d := &net.Dialer{Timeout: testutil.DefaultTimeout}
		tc, err := tls.DialWithDialer(d, "tcp", addr, client)
		if err != nil {
			t.Fatal(err)
		}
		if !tc.ConnectionState().DidResume {
			t.Fatalf("TLS %x: the session was not resumed", v)
		}
		c := testutil.NewConn(t, tc)
		// Another CA replaces the client's.
		other := newTestCA(t, t.TempDir(), "other")
		pem, err := os.ReadFile(other.file)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.ca.file, pem, 0o644); err != nil {
			t.Fatal(err)
		}
		c.Send([]byte("refresh_certs\r\n"))
		if got := c.ReadReply(testutil.LineReply); string(got) != "OK\r\n" {
			t.Fatalf("refresh_certs: %q", got)
		}
		c.Close()
		tc, err = tls.DialWithDialer(d, "tcp", addr, client)
		if err != nil {
			continue // refused in the handshake
		}
		resumed := tc.ConnectionState().DidResume
		_, err = tc.Write([]byte("version\r\n"))
		if err == nil {
			tc.SetReadDeadline(time.Now().Add(testutil.DefaultTimeout))
			var buf [64]byte
			var n int
			if n, err = tc.Read(buf[:]); err == nil {
				t.Errorf("TLS %x: a client of a CA no longer trusted was served %q (resumed: %v)", v, buf[:n], resumed)
			}
		}
		tc.Close()
	}
}

// TestReloadAuth checks that ReloadAuth (SIGHUP) reads the auth file and
// the SASL password database again, as memcached reads its auth file
// again on SIGHUP, so that a removed user can no longer authenticate;
// a file that cannot be loaded keeps the entries in use.
func TestReloadAuth(t *testing.T) {
	authFile := writeAuthFile(t, "alice:secret\n")
	s := testutil.ServeCorvid(t, server.Config{AuthFile: authFile, TCPAddrs: []string{"127.0.0.1:0"}})
	addr := s.Addrs()[0].String()
	login := func(user, pass string) string {
		t.Helper()
		c := testutil.Dial(t, addr)
		defer c.Close()
		c.Send(fmt.Appendf(nil, "set a 0 0 %d\r\n%s %s\r\n", len(user)+1+len(pass), user, pass))
		return string(c.ReadReply(testutil.LineReply))
	}
	if got := login("alice", "secret"); got != "STORED\r\n" {
		t.Fatalf("alice before the reload: %q", got)
	}
	if err := os.WriteFile(authFile, []byte("bob:pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadAuth(); err != nil {
		t.Fatal(err)
	}
	if got := login("alice", "secret"); got != "CLIENT_ERROR authentication failure\r\n" {
		t.Errorf("alice after she was removed: %q", got)
	}
	if got := login("bob", "pw"); got != "STORED\r\n" {
		t.Errorf("bob after he was added: %q", got)
	}
	if err := os.WriteFile(authFile, []byte("nocolon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadAuth(); !errors.Is(err, server.ErrAuthFileMalformed) {
		t.Errorf("reload of a malformed file: %v, want ErrAuthFileMalformed", err)
	}
	if got := login("bob", "pw"); got != "STORED\r\n" {
		t.Errorf("bob after a failed reload: %q", got)
	}

	pwdb := writeAuthFile(t, "alice:secret\n")
	s = testutil.ServeCorvid(t, server.Config{SASL: true, SASLPasswordDB: pwdb, TCPAddrs: []string{"127.0.0.1:0"}})
	addr = s.Addrs()[0].String()
	sasl := func(user, pass string) uint16 {
		t.Helper()
		c := testutil.Dial(t, addr)
		defer c.Close()
		c.Send(testutil.BinaryRequest{Opcode: 0x21, Key: []byte("PLAIN"), Value: []byte("\x00" + user + "\x00" + pass)}.Bytes())
		r, err := c.ReadBinary()
		if err != nil {
			t.Fatal(err)
		}
		return r.Status()
	}
	if st := sasl("alice", "secret"); st != 0 {
		t.Fatalf("SASL alice before the reload: status 0x%x", st)
	}
	if err := os.WriteFile(pwdb, []byte("bob:pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadAuth(); err != nil {
		t.Fatal(err)
	}
	if st := sasl("alice", "secret"); st != 0x20 {
		t.Errorf("SASL alice after she was removed: status 0x%x", st)
	}
	if st := sasl("bob", "pw"); st != 0 {
		t.Errorf("SASL bob after he was added: status 0x%x", st)
	}
}
