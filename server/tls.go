package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TLSConfig configures TLS on a server's TCP listeners, as memcached's -Z
// and its ssl_* suboptions do. UDP and Unix sockets stay plain, as in
// memcached. The zero value of each field is memcached's default.
type TLSConfig struct {
	// CertFile is the PEM certificate chain (ssl_chain_cert), KeyFile its
	// private key (ssl_key). Both are required; refresh_certs reads them
	// again.
	CertFile, KeyFile string
	// KeyFormat is the key file's format as OpenSSL numbers it
	// (ssl_keyformat): 1 PEM (the default), 2 DER.
	KeyFormat int
	// CAFile is a PEM file of the certificate authorities client
	// certificates must chain to (ssl_ca_cert). Without it no client
	// certificate verifies, as with memcached's OpenSSL context.
	CAFile string
	// VerifyMode is memcached's ssl_verify_mode: 0 no client certificate,
	// 1 one is requested and verified when given, 2 one is required,
	// 3 one is required once per connection (the same as 2: corvid, like
	// memcached, never renegotiates).
	VerifyMode int
	// MinVersion is the oldest protocol accepted (ssl_min_version), a
	// crypto/tls version; default tls.VersionTLS12.
	MinVersion uint16
	// Ciphers is an OpenSSL cipher list (ssl_ciphers) for TLS 1.2 and
	// older; empty means Go's defaults. See ParseCiphers.
	Ciphers string
	// SessionCache lets clients resume sessions (ssl_session_cache): Go
	// issues session tickets. Off by default, as memcached's cache.
	SessionCache bool
	// KernelTLS (ssl_kernel_tls) and WBufSize (ssl_wbuf_size, bytes,
	// default 16384) are reported in "stats settings" only: crypto/tls
	// has no kernel offload and sizes its own records.
	KernelTLS bool
	WBufSize  int
	// PlainAddrs are entries of Config.TCPAddrs served without TLS
	// (memcached's "-l notls:host:port").
	PlainAddrs []string
	// HandshakeTimeout is how long a client may take to complete its
	// handshake (default DefaultTLSHandshakeTimeout; negative: no
	// limit); Config.IdleTimeout bounds it too when shorter. memcached
	// has no such limit.
	HandshakeTimeout time.Duration
}

// DefaultTLSHandshakeTimeout is TLSConfig.HandshakeTimeout's default.
const DefaultTLSHandshakeTimeout = 10 * time.Second

// verifyModeFlags is what memcached reports as ssl_verify_mode: OpenSSL's
// SSL_VERIFY_* bits for each of its modes.
var verifyModeFlags = [4]int{0, 1, 1 | 2, 1 | 2 | 4}

// tlsServer holds a server's TLS state. It is safe for concurrent use.
type tlsServer struct {
	cfg    TLSConfig
	suites []uint16 // from cfg.Ciphers; nil: Go's defaults

	mu  sync.Mutex                 // serialises reloads
	cur atomic.Pointer[tls.Config] // the configuration new handshakes use
	// refreshed is the cache time of the last successful load.
	refreshed atomic.Int64

	base *tls.Config // the listeners' config: hands out cur

	handshakeErrors atomic.Uint64
	newSessions     atomic.Uint64
}

// newTLSServer checks cfg and loads its certificates; the error is
// memcached's startup message.
func newTLSServer(cfg TLSConfig, now int64) (*tlsServer, error) {
	if cfg.VerifyMode < 0 || cfg.VerifyMode > 3 {
		return nil, tlsConfigError("Invalid ssl_verify_mode. Use help to see valid options.")
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.KeyFormat == 0 {
		cfg.KeyFormat = 1
	}
	if cfg.WBufSize == 0 {
		cfg.WBufSize = 16 << 10
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	t := &tlsServer{cfg: cfg}
	if cfg.Ciphers != "" {
		suites, err := ParseCiphers(cfg.Ciphers)
		if err != nil {
			return nil, tlsConfigError(err.Error())
		}
		t.suites = suites
	}
	if err := t.load(now); err != nil {
		return nil, tlsConfigError(err.Error())
	}
	t.base = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load(), nil
		},
	}
	return t, nil
}

// certError is a failure to load the certificate, key or CA files: its
// text is memcached's, printed at startup and answered to refresh_certs.
type certError string

func (e certError) Error() string { return string(e) }

// load reads the certificate, key and CA files and makes them the ones
// new handshakes use; on failure the previous ones stay and the error is
// a certError.
func (t *tlsServer) load(now int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &t.cfg
	chain, err := readFile(c.CertFile)
	if err == nil && !hasPEMCert(chain) {
		err = errors.New("no PEM certificate found")
	}
	if err != nil {
		return certError(fmt.Sprintf("Error loading the certificate chain: %s : %v", nullName(c.CertFile), err))
	}
	key, err := readFile(c.KeyFile)
	if err != nil {
		return certError(fmt.Sprintf("Error loading the key: %s : %v", nullName(c.KeyFile), err))
	}
	cert, err := keyPair(chain, key, c.KeyFormat)
	if err != nil {
		return certError(fmt.Sprintf("Error validating the certificate: %v", err))
	}
	// Without a CA file no client certificate verifies (an empty pool),
	// as with memcached's context, which loads no default trust store.
	pool := x509.NewCertPool()
	if c.CAFile != "" {
		cas, err := os.ReadFile(c.CAFile)
		if err == nil && !pool.AppendCertsFromPEM(cas) {
			err = errors.New("no PEM certificate found")
		}
		if err != nil {
			return certError(fmt.Sprintf("Error loading the CA certificate: %s : %v", c.CAFile, err))
		}
	}
	cfg := &tls.Config{
		Certificates:           []tls.Certificate{cert},
		ClientCAs:              pool,
		MinVersion:             c.MinVersion,
		CipherSuites:           t.suites,
		SessionTicketsDisabled: !c.SessionCache,
		Renegotiation:          tls.RenegotiateNever,
	}
	switch c.VerifyMode {
	case 1:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case 2, 3:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	t.cur.Store(cfg)
	t.refreshed.Store(now)
	return nil
}

// readFile reads a file named by a setting, which may be missing.
func readFile(name string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("no file given")
	}
	return os.ReadFile(name)
}

// hasPEMCert reports whether b holds a PEM certificate.
func hasPEMCert(b []byte) bool {
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return false
		}
		if blk.Type == "CERTIFICATE" {
			return true
		}
	}
}

// nullName is how memcached prints a file name that was not given.
func nullName(s string) string {
	if s == "" {
		return "(null)"
	}
	return s
}

// keyPair builds the certificate from a PEM chain and a PEM (format 1) or
// DER (format 2) private key.
func keyPair(chain, key []byte, format int) (tls.Certificate, error) {
	switch format {
	case 1:
		return tls.X509KeyPair(chain, key)
	case 2:
		k, err := x509.ParsePKCS8PrivateKey(key)
		if err != nil {
			if k, err = x509.ParseECPrivateKey(key); err != nil {
				k, err = x509.ParsePKCS1PrivateKey(key)
			}
		}
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("cannot parse the DER private key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return tls.Certificate{}, err
		}
		return tls.X509KeyPair(chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	return tls.Certificate{}, fmt.Errorf("key format %d is not supported (1 PEM, 2 DER)", format)
}

// handshake completes the TLS handshake of c, whose socket is tc, within
// the handshake timeout and the idle timeout, when set. It reports whether
// c may be served; a failed handshake is counted unless the client left
// without sending anything, or the server is stopping.
func (t *tlsServer) handshake(s *Server, c *conn, tc *tls.Conn) bool {
	d := t.cfg.HandshakeTimeout
	if idle := s.cfg.IdleTimeout; idle > 0 && (d <= 0 || idle < d) {
		d = idle
	}
	if d > 0 {
		tc.SetDeadline(time.Now().Add(d))
	}
	if c.stopped.Load() {
		return false // stop's deadline may have been overwritten
	}
	err := tc.HandshakeContext(context.Background())
	if err == nil && d > 0 {
		// serve sets its own deadlines, if any. Were stop's deadline
		// overwritten here, serve still sees stopped before it reads.
		tc.SetDeadline(time.Time{})
	}
	if err != nil {
		if !errors.Is(err, io.EOF) && !c.stopped.Load() {
			t.handshakeErrors.Add(1)
			if s.cfg.Verbosity > 0 {
				s.cfg.Logger.Info("TLS handshake failed", "remote", tc.RemoteAddr().String(), "err", err)
			}
		}
		return false
	}
	if t.cfg.SessionCache && !tc.ConnectionState().DidResume {
		t.newSessions.Add(1)
	}
	return true
}

// refreshCerts answers refresh_certs: the certificate, key and CA files
// are read again; a failure keeps the ones in use. As in memcached,
// noreply silences the OK but not an error.
func (c *conn) refreshCerts(noReply bool) {
	t := c.srv.tls
	switch {
	case t == nil:
		c.wbuf = append(c.wbuf, "Error TLS not enabled\r\n"...)
	default:
		if err := t.load(c.srv.cache.CurrentTime()); err != nil {
			c.wbuf = append(append(c.wbuf, err.Error()...), '\r', '\n')
		} else if !noReply {
			c.wbuf = append(c.wbuf, "OK\r\n"...)
		}
	}
}

// writeTLSStats appends the TLS counters of "stats", as memcached lists
// them when TLS is on.
func (s *Server) writeTLSStats(w *statWriter) {
	t := s.tls
	if t == nil {
		return
	}
	if t.cfg.SessionCache {
		w.u("ssl_new_sessions", t.newSessions.Load())
	}
	w.u("ssl_handshake_errors", t.handshakeErrors.Load())
	w.i("time_since_server_cert_refresh", s.cache.CurrentTime()-t.refreshed.Load())
}

// writeTLSSettings appends memcached's ssl_* rows of "stats settings".
func (s *Server) writeTLSSettings(w *statWriter) {
	t := s.tls
	if t == nil {
		w.yesno("ssl_enabled", false)
		w.str("ssl_chain_cert", "(null)")
		w.str("ssl_key", "(null)")
		w.i("ssl_verify_mode", 0)
		w.i("ssl_keyformat", 1)
		w.str("ssl_ciphers", "NULL")
		w.str("ssl_ca_cert", "NULL")
		w.i("ssl_wbuf_size", 16<<10)
		w.yesno("ssl_session_cache", false)
		w.yesno("ssl_kernel_tls", false)
		w.str("ssl_min_version", "tlsv1.2")
		return
	}
	c := &t.cfg
	w.yesno("ssl_enabled", true)
	w.str("ssl_chain_cert", nullName(c.CertFile))
	w.str("ssl_key", nullName(c.KeyFile))
	w.i("ssl_verify_mode", int64(verifyModeFlags[c.VerifyMode]))
	w.i("ssl_keyformat", int64(c.KeyFormat))
	w.str("ssl_ciphers", orNULL(c.Ciphers))
	w.str("ssl_ca_cert", orNULL(c.CAFile))
	w.i("ssl_wbuf_size", int64(c.WBufSize))
	w.yesno("ssl_session_cache", c.SessionCache)
	w.yesno("ssl_kernel_tls", c.KernelTLS)
	w.str("ssl_min_version", tlsVersionName(c.MinVersion))
}

func orNULL(s string) string {
	if s == "" {
		return "NULL"
	}
	return s
}

// tlsVersionName is memcached's name for a protocol version.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "tlsv1.0"
	case tls.VersionTLS11:
		return "tlsv1.1"
	case tls.VersionTLS12:
		return "tlsv1.2"
	case tls.VersionTLS13:
		return "tlsv1.3"
	}
	return "unknown"
}

// TLSVersion returns the crypto/tls version for memcached's
// ssl_min_version number (0 TLS 1.0 … 3 TLS 1.3).
func TLSVersion(n int) (uint16, bool) {
	switch n {
	case 0:
		return tls.VersionTLS10, true
	case 1:
		return tls.VersionTLS11, true
	case 2:
		return tls.VersionTLS12, true
	case 3:
		return tls.VersionTLS13, true
	}
	return 0, false
}

// isPlainAddr reports whether the TCP listener on addr is served without
// TLS.
func (t *tlsServer) isPlainAddr(addr string) bool {
	return slices.Contains(t.cfg.PlainAddrs, addr)
}
