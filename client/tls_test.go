package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// startTLSProxy listens with TLS on 127.0.0.1 and forwards each connection
// to backend; it returns its address and a config that trusts it. It stops
// with the test.
func startTLSProxy(t *testing.T, backend string) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			front, err := ln.Accept()
			if err != nil {
				return
			}
			back, err := net.Dial("tcp", backend)
			if err != nil {
				front.Close()
				continue
			}
			track(front)
			track(back)
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(back, front); back.Close() }()
			go func() { defer wg.Done(); io.Copy(front, back); front.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func TestDialContextTLS(t *testing.T) {
	addr, cfg := startTLSProxy(t, testutil.StartCorvid(t, server.Config{}))
	d := &tls.Dialer{Config: cfg}
	var dials atomic.Int32
	c := newClient(t, []string{addr}, func(c *Config) {
		c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}
	})
	ctx := context.Background()
	for i := range 10 {
		v := []byte{byte('a' + i)}
		if err := c.Set(ctx, &Item{Key: "k", Value: v}); err != nil {
			t.Fatal(err)
		}
		if it, err := c.Get(ctx, "k"); err != nil || string(it.Value) != string(v) {
			t.Fatalf("Get over TLS = %+v, %v", it, err)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d TLS connections, want 1: the pooled one was not reused", n)
	}
}

func TestConfigTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	addr := testutil.StartCorvid(t, server.Config{TLS: &server.TLSConfig{CertFile: certFile, KeyFile: keyFile}})
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	ctx := context.Background()
	c := newClient(t, []string{addr}, func(c *Config) { c.TLS = &tls.Config{RootCAs: pool} })
	if err := c.Set(ctx, &Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("Get over TLS = %+v, %v", it, err)
	}
	// Without TLS the server refuses the client before any reply.
	plain := newClient(t, []string{addr}, nil)
	if _, err := plain.Get(ctx, "k"); err == nil {
		t.Fatal("a plain client was served by a TLS port")
	}
	// A server certificate the client does not trust fails the dial.
	untrusting := newClient(t, []string{addr}, func(c *Config) { c.TLS = &tls.Config{RootCAs: x509.NewCertPool()} })
	var se *ServerError
	if _, err := untrusting.Get(ctx, "k"); !errors.As(err, &se) || se.Op != "dial" {
		t.Fatalf("untrusted server: %v", err)
	}
}
