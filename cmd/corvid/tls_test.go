//go:build unix

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// writeSelfSigned writes a self-signed certificate and its key to dir,
// readable by memcached's "nobody".
func writeSelfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o644)
	return cert, key
}

// TestServerTLSStartupErrors runs corvid and memcached with TLS command
// lines both refuse, and compares the first line of the message and the
// exit status.
func TestServerTLSStartupErrors(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		os.Chmod(d, 0o755)
	}
	cert, key := writeSelfSigned(t, dir)
	files := "ssl_chain_cert=" + cert + ",ssl_key=" + key
	port := "-p" + strconv.Itoa(freePort(t))
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"-Z", port}, "Error loading the certificate chain: (null) : ", 64},
		{[]string{"-Z", port, "-o", "ssl_chain_cert=" + cert}, "Error loading the key: (null) : ", 64},
		{[]string{"-Z", port, "-o", "ssl_chain_cert=" + cert + ",ssl_key=/nonexistent"}, "Error loading the key: /nonexistent : ", 64},
		{[]string{"-Z", port, "-o", files + ",ssl_ca_cert=/nonexistent"}, "Error loading the CA certificate: /nonexistent : ", 64},
		{[]string{"-Z", port, "-o", files + ",ssl_ciphers=FOO"}, "Error setting the provided cipher(s): FOO", 64},
		{[]string{"-Z", "-p", "0", "-o", files}, "ERROR: You cannot enable SSL without a TCP port.", 64},
		{[]string{"-Z", port, "-o", files + ",ssl_min_version=tlsv1.2"}, "could not parse argument to ssl_min_version", 1},
		{[]string{"-Z", port, "-o", files + ",ssl_min_version=4"}, "Invalid ssl_min_version. Use help to see valid options.", 1},
		{[]string{"-Z", port, "-o", files + ",ssl_verify_mode=4"}, "Invalid ssl_verify_mode. Use help to see valid options.", 1},
		{[]string{"-Z", port, "-o", files + ",ssl_verify_mode"}, "Missing ssl_verify_mode argument", 1},
		{[]string{port, "-l", "notls:127.0.0.1"}, "'notls' option is valid only when SSL is enabled", 71},
	}
	bin := corvidBinary(t)
	mc := testutil.MemcachedPath()
	if mc != "" {
		if h, _ := exec.Command(mc, "-h").Output(); !strings.Contains(string(h), "enable-ssl") {
			mc = "" // built without TLS
		}
	}
	// A command line that is wrongly accepted starts a server: the
	// context ends it.
	run := func(name string, args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return string(out), exitCode(err)
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, code := run(bin, append([]string{"server", "-l", "127.0.0.1"}, tc.args...)...)
			if !strings.Contains(out, "\n"+tc.want) && !strings.HasPrefix(out, tc.want) || code != tc.code {
				t.Errorf("corvid: %q, exit %d; want %q…, exit %d", out, code, tc.want, tc.code)
			}
			if mc == "" {
				return
			}
			args := tc.args
			if os.Geteuid() == 0 {
				args = append([]string{"-u", "nobody"}, args...)
			}
			out, code = run(mc, append([]string{"-l", "127.0.0.1"}, args...)...)
			if !strings.Contains(out, tc.want) || code != tc.code {
				t.Errorf("memcached: %q, exit %d; want %q…, exit %d", out, code, tc.want, tc.code)
			}
		})
	}
}

func TestServerConfigTLS(t *testing.T) {
	o := &serverOptions{}
	cmd := serverCommand(o)
	err := cmd.Flags().Parse([]string{"-Z", "-p", "11211", "-U", "11212", "-l", "127.0.0.1:11300,notls:127.0.0.1:11301,[::1]",
		"-o", "ssl_chain_cert=c.pem,ssl_key=k.pem,ssl_ca_cert=ca.pem,ssl_verify_mode=3,ssl_min_version=3,ssl_session_cache,ssl_wbuf_size=32"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.TLS
	if tc == nil || tc.CertFile != "c.pem" || tc.KeyFile != "k.pem" || tc.CAFile != "ca.pem" || tc.VerifyMode != 3 ||
		tc.MinVersion != 0x0304 || !tc.SessionCache || tc.WBufSize != 32<<10 {
		t.Fatalf("TLS config %+v", tc)
	}
	wantTCP := []string{"127.0.0.1:11300", "127.0.0.1:11301", "[::1]:11211"}
	if strings.Join(cfg.TCPAddrs, " ") != strings.Join(wantTCP, " ") {
		t.Errorf("TCP %v, want %v", cfg.TCPAddrs, wantTCP)
	}
	// As memcached, a port in -l replaces -U too.
	wantUDP := []string{"127.0.0.1:11300", "127.0.0.1:11301", "[::1]:11212"}
	if strings.Join(cfg.UDPAddrs, " ") != strings.Join(wantUDP, " ") {
		t.Errorf("UDP %v, want %v", cfg.UDPAddrs, wantUDP)
	}
	if strings.Join(tc.PlainAddrs, " ") != "127.0.0.1:11301" {
		t.Errorf("plain %v", tc.PlainAddrs)
	}
}
