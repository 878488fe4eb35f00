package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	file string // its certificate, PEM
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), file: filepath.Join(dir, name+"-ca.pem")}
	ca.pool.AddCert(cert)
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue makes a certificate signed by ca with the given serial, for the
// server (127.0.0.1) or a client, and writes it and its key to
// dir/name.pem and dir/name-key.pem.
func (ca *testCA) issue(t *testing.T, dir, name string, serial int64, client bool) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	// Written to a temporary file and renamed, so that a server reading
	// it never sees half of it.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsFiles are a CA, a server certificate it signed (serial 100) and a
// client certificate it signed.
type tlsFiles struct {
	dir            string
	ca             *testCA
	cert, key      string
	clientCert     tls.Certificate
	clientCertFile string
	clientKeyFile  string
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	// memcached drops privileges to nobody, which must read the files.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &tlsFiles{dir: dir, ca: newTestCA(t, dir, "test")}
	f.cert, f.key, _ = f.ca.issue(t, dir, "server", 100, false)
	f.clientCertFile, f.clientKeyFile, f.clientCert = f.ca.issue(t, dir, "client", 200, true)
	return f
}

func (f *tlsFiles) config() *server.TLSConfig {
	return &server.TLSConfig{CertFile: f.cert, KeyFile: f.key}
}

// clientConfig trusts the test CA and presents certs.
func (f *tlsFiles) clientConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: f.ca.pool, ServerName: "127.0.0.1", Certificates: certs}
}

// dialTLS connects to addr with cfg; the handshake is left to the first
// read or write, as a client's would be.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) *testutil.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testutil.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.NewConn(t, tls.Client(nc, cfg))
}

// tlsServers starts corvid and, when installed, memcached with the same
// TLS settings (args are memcached's -o suboptions beyond the files) and
// returns their addresses by name.
func tlsServers(t *testing.T, f *tlsFiles, cfg server.TLSConfig, opts ...string) map[string]string {
	t.Helper()
	cfg.CertFile, cfg.KeyFile = f.cert, f.key
	addrs := map[string]string{"corvid": testutil.StartCorvid(t, server.Config{TLS: &cfg})}
	if testutil.MemcachedPath() != "" && memcachedHasTLS() {
		o := append([]string{"ssl_chain_cert=" + f.cert, "ssl_key=" + f.key}, opts...)
		addrs["memcached"] = testutil.StartMemcached(t, "-Z", "-o", strings.Join(o, ","))
	}
	return addrs
}

// memcachedHasTLS reports whether the installed memcached was built with
// TLS.
func memcachedHasTLS() bool {
	out, _ := exec.Command(testutil.MemcachedPath(), "-h").Output()
	return strings.Contains(string(out), "enable-ssl")
}

// statValue returns one "stats [group]" value read over c.
func statValue(t *testing.T, c *testutil.Conn, group, name string) string {
	t.Helper()
	cmd := "stats"
	if group != "" {
		cmd += " " + group
	}
	c.Send([]byte(cmd + "\r\n"))
	for _, line := range strings.Split(string(c.ReadReply(testutil.StatsReply)), "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && f[1] == name {
			return f[2]
		}
	}
	return ""
}

func TestTLSSetGet(t *testing.T) {
	f := newTLSFiles(t)
	for name, addr := range tlsServers(t, f, server.TLSConfig{}) {
		t.Run(name, func(t *testing.T) {
			c := dialTLS(t, addr, f.clientConfig())
			c.Send([]byte("set k 5 0 5\r\nhello\r\nget k\r\n"))
			if got := string(c.ReadReply(testutil.LineReply)); got != "STORED\r\n" {
				t.Fatalf("set: %q", got)
			}
			if got := string(c.ReadReply(testutil.ValuesReply)); got != "VALUE k 5 5\r\nhello\r\nEND\r\n" {
				t.Fatalf("get: %q", got)
			}
			want := map[string]string{"ssl_enabled": "yes", "ssl_chain_cert": f.cert, "ssl_key": f.key,
				"ssl_verify_mode": "0", "ssl_keyformat": "1", "ssl_ciphers": "NULL", "ssl_ca_cert": "NULL",
				"ssl_wbuf_size": "16384", "ssl_session_cache": "no", "ssl_kernel_tls": "no", "ssl_min_version": "tlsv1.2"}
			for k, v := range want {
				if got := statValue(t, c, "settings", k); got != v {
					t.Errorf("stats settings %s = %q, want %q", k, got, v)
				}
			}
			// memcached counts the readiness probe of the test's
			// start (a plain connection closed at once) when the close
			// arrives before it tries the handshake; corvid never does.
			if got := statValue(t, c, "", "ssl_handshake_errors"); got != "0" && name == "corvid" {
				t.Errorf("ssl_handshake_errors = %q", got)
			}
		})
	}
}

func TestTLSWithEventLoops(t *testing.T) {
	f := newTLSFiles(t)
	addr := testutil.StartCorvid(t, server.Config{TLS: f.config(), EventLoops: 2})
	for i := range 3 {
		c := dialTLS(t, addr, f.clientConfig())
		v := strconv.Itoa(i)
		c.Send([]byte("set k 0 0 1\r\n" + v + "\r\nget k\r\n"))
		c.ReadReply(testutil.LineReply)
		if got := string(c.ReadReply(testutil.ValuesReply)); got != "VALUE k 0 1\r\n"+v+"\r\nEND\r\n" {
			t.Fatalf("get: %q", got)
		}
	}
}

// waitStat polls a stat over a new TLS connection until it has want.
func waitStat(t *testing.T, dial func() *testutil.Conn, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dial()
		got := statValue(t, c, "", name)
		c.Close()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, want %q", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTLSPlainClientRefused(t *testing.T) {
	f := newTLSFiles(t)
	addr := testutil.StartCorvid(t, server.Config{TLS: f.config()})
	c := testutil.Dial(t, addr)
	c.Send([]byte("get foo\r\n"))
	// The server answers with a TLS alert, or nothing, and closes: never
	// a memcached reply.
	reply, err := c.TryReadReply(testutil.AnyReply)
	if err == nil || strings.Contains(string(reply), "END") {
		t.Fatalf("plain client got %q, %v", reply, err)
	}
	waitStat(t, func() *testutil.Conn { return dialTLS(t, addr, f.clientConfig()) }, "ssl_handshake_errors", "1")
	// A client that leaves before sending anything is no handshake error.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	c = dialTLS(t, addr, f.clientConfig())
	if got := statValue(t, c, "", "total_connections"); got == "" {
		t.Fatal("no total_connections")
	}
	if got := statValue(t, c, "", "ssl_handshake_errors"); got != "1" {
		t.Errorf("ssl_handshake_errors = %q after a silent client, want 1", got)
	}
}

func TestTLSClientCertificates(t *testing.T) {
	f := newTLSFiles(t)
	other := newTestCA(t, f.dir, "other")
	_, _, stranger := other.issue(t, f.dir, "stranger", 300, true)
	// A client offers a certificate only when it is from a CA the server
	// names; this one offers its own whatever the server asks for.
	wrong := f.clientConfig()
	wrong.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger, nil }
	cases := []struct {
		mode               int
		none, valid, wrong bool // whether each client is served
	}{
		{0, true, true, true},
		{1, true, true, false},
		{2, false, true, false},
		{3, false, true, false},
	}
	for _, tc := range cases {
		t.Run("mode"+strconv.Itoa(tc.mode), func(t *testing.T) {
			cfg := server.TLSConfig{CAFile: f.ca.file, VerifyMode: tc.mode}
			opts := []string{"ssl_ca_cert=" + f.ca.file, "ssl_verify_mode=" + strconv.Itoa(tc.mode)}
			for name, addr := range tlsServers(t, f, cfg, opts...) {
				t.Run(name, func(t *testing.T) {
					for _, cl := range []struct {
						name  string
						certs []tls.Certificate
						ok    bool
					}{{"none", nil, tc.none}, {"valid", []tls.Certificate{f.clientCert}, tc.valid}, {"wrong", nil, tc.wrong}} {
						cfg := f.clientConfig(cl.certs...)
						if cl.name == "wrong" {
							cfg = wrong
						}
						c := dialTLS(t, addr, cfg)
						// The refusal comes before any command is
						// answered: the version line never arrives.
						err := c.TrySend([]byte("version\r\n"))
						var reply []byte
						if err == nil {
							reply, err = c.TryReadReply(testutil.LineReply)
						}
						served := err == nil && strings.HasPrefix(string(reply), "VERSION ")
						if served != cl.ok {
							t.Errorf("client %s: served %v (%q, %v), want %v", cl.name, served, reply, err, cl.ok)
						}
						c.Close()
					}
				})
			}
		})
	}
}

// serverSerial returns the serial of the certificate a new connection to
// addr is served.
func serverSerial(t *testing.T, addr string, cfg *tls.Config) int64 {
	t.Helper()
	d := &net.Dialer{Timeout: testutil.DefaultTimeout}
	tc, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	return tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestTLSRefreshCerts(t *testing.T) {
	f := newTLSFiles(t)
	for name, addr := range tlsServers(t, f, server.TLSConfig{}) {
		t.Run(name, func(t *testing.T) {
			f.ca.issue(t, f.dir, "server", 100, false)
			cfg := f.clientConfig()
			if s := serverSerial(t, addr, cfg); s != 100 {
				t.Fatalf("serial %d before refresh, want 100", s)
			}
			c := dialTLS(t, addr, cfg)
			f.ca.issue(t, f.dir, "server", 101, false)
			if s := serverSerial(t, addr, cfg); s != 100 {
				t.Fatalf("serial %d before refresh_certs, want 100", s)
			}
			c.Send([]byte("refresh_certs\r\n"))
			if got := string(c.ReadReply(testutil.LineReply)); got != "OK\r\n" {
				t.Fatalf("refresh_certs: %q", got)
			}
			if s := serverSerial(t, addr, cfg); s != 101 {
				t.Fatalf("serial %d after refresh_certs, want 101", s)
			}
			if got := statValue(t, c, "", "time_since_server_cert_refresh"); got == "" {
				t.Error("no time_since_server_cert_refresh")
			}
			// A certificate file that does not parse: the old one stays.
			if err := os.WriteFile(f.cert, []byte("garbage\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c.Send([]byte("refresh_certs\r\n"))
			got := string(c.ReadReply(testutil.LineReply))
			if !strings.HasPrefix(got, "Error loading the certificate chain: "+f.cert+" : ") {
				t.Fatalf("refresh_certs of a bad file: %q", got)
			}
			if s := serverSerial(t, addr, cfg); s != 101 {
				t.Fatalf("serial %d after a failed refresh_certs, want 101", s)
			}
			// noreply silences the OK, not an error.
			c.Send([]byte("refresh_certs noreply\r\nversion\r\n"))
			if got := string(c.ReadReply(testutil.LineReply)); !strings.HasPrefix(got, "Error loading the certificate chain: ") {
				t.Fatalf("failed refresh_certs noreply answered %q", got)
			}
			c.ReadReply(testutil.LineReply)
			f.ca.issue(t, f.dir, "server", 100, false)
			c.Send([]byte("refresh_certs noreply\r\nversion\r\n"))
			if got := string(c.ReadReply(testutil.LineReply)); !strings.HasPrefix(got, "VERSION ") {
				t.Fatalf("refresh_certs noreply answered %q", got)
			}
		})
	}
}

func TestRefreshCertsWithoutTLS(t *testing.T) {
	addrs := map[string]string{"corvid": testutil.StartCorvid(t, server.Config{})}
	if testutil.MemcachedPath() != "" && memcachedHasTLS() {
		addrs["memcached"] = testutil.StartMemcached(t)
	}
	for name, addr := range addrs {
		t.Run(name, func(t *testing.T) {
			c := testutil.Dial(t, addr)
			c.Send([]byte("refresh_certs\r\n"))
			if got := string(c.ReadReply(testutil.LineReply)); got != "Error TLS not enabled\r\n" {
				t.Fatalf("refresh_certs: %q", got)
			}
			if got := statValue(t, c, "settings", "ssl_enabled"); got != "no" {
				t.Errorf("ssl_enabled = %q", got)
			}
			if got := statValue(t, c, "", "ssl_handshake_errors"); got != "" {
				t.Errorf("ssl_handshake_errors listed without TLS: %q", got)
			}
		})
	}
}

// TestTLSOnlyOnTCP checks that UDP, Unix sockets and TCP listeners named
// in PlainAddrs stay plain, as memcached's notls listeners.
func TestTLSOnlyOnTCP(t *testing.T) {
	f := newTLSFiles(t)
	sock := filepath.Join(t.TempDir(), "mc.sock")
	plain := freeTCPAddr(t)
	cfg := f.config()
	cfg.PlainAddrs = []string{plain}
	srv := startUDPCorvid(t, server.Config{
		TCPAddrs: []string{"127.0.0.1:0", plain},
		UnixPath: sock,
		TLS:      cfg,
	})
	addrs := srv.Addrs()
	c := dialTLS(t, addrs[0].String(), f.clientConfig())
	c.Send([]byte("set k 0 0 1\r\nv\r\n"))
	c.ReadReply(testutil.LineReply)
	for _, a := range addrs[1:] {
		nc, err := net.DialTimeout(a.Network(), a.String(), testutil.DefaultTimeout)
		if err != nil {
			t.Fatal(err)
		}
		pc := testutil.NewConn(t, nc)
		pc.Send([]byte("get k\r\n"))
		if got := string(pc.ReadReply(testutil.ValuesReply)); got != "VALUE k 0 1\r\nv\r\nEND\r\n" {
			t.Errorf("plain get on %s: %q", a, got)
		}
	}
	u := dialUDP(t, srv.UDPAddrs()[0].String())
	if got := payload(u.do("get k\r\n")); got != "VALUE k 0 1\r\nv\r\nEND\r\n" {
		t.Errorf("UDP get: %q", got)
	}
}

// freeTCPAddr returns a loopback address that was free a moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestTLSStartupErrors(t *testing.T) {
	f := newTLSFiles(t)
	cases := []struct {
		name string
		cfg  server.TLSConfig
		want string
	}{
		{"no cert", server.TLSConfig{}, "Error loading the certificate chain: (null) : "},
		{"no key", server.TLSConfig{CertFile: f.cert}, "Error loading the key: (null) : "},
		{"missing key", server.TLSConfig{CertFile: f.cert, KeyFile: "/nonexistent"}, "Error loading the key: /nonexistent : "},
		{"mismatched key", server.TLSConfig{CertFile: f.cert, KeyFile: f.clientKeyFile}, "Error validating the certificate: "},
		{"missing CA", server.TLSConfig{CertFile: f.cert, KeyFile: f.key, CAFile: "/nonexistent"}, "Error loading the CA certificate: /nonexistent : "},
		{"ciphers", server.TLSConfig{CertFile: f.cert, KeyFile: f.key, Ciphers: "FOO"}, "Error setting the provided cipher(s): FOO"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := server.New(server.Config{TCPAddrs: []string{"127.0.0.1:0"}, TLS: &tc.cfg})
			if err == nil {
				srv.Close()
				t.Fatal("started")
			}
			if !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, server.ErrTLSConfig) {
				t.Fatalf("error %q, want %q…", err, tc.want)
			}
		})
	}
	if _, err := server.New(server.Config{UDPAddrs: []string{"127.0.0.1:0"}, TLS: f.config()}); !errors.Is(err, server.ErrTLSWithoutTCP) {
		t.Errorf("TLS without TCP: %v", err)
	}
}
