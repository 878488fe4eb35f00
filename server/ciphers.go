package server

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
)

// cipher is a TLS 1.2 suite crypto/tls implements, under OpenSSL's name,
// with the attributes OpenSSL's cipher-list aliases select on.
type cipher struct {
	name  string
	id    uint16
	attrs string // space-separated aliases that select it
}

// ciphers are the suites of crypto/tls in OpenSSL's names, in the order
// of preference ParseCiphers gives the aliases.
var ciphers = []cipher{
	{"ECDHE-ECDSA-AES128-GCM-SHA256", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "HIGH ECDHE EECDH kECDHE kEECDH aECDSA ECDSA AES AES128 AESGCM SHA256 TLSv1.2"},
	{"ECDHE-RSA-AES128-GCM-SHA256", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "HIGH ECDHE EECDH kECDHE kEECDH aRSA AES AES128 AESGCM SHA256 TLSv1.2"},
	{"ECDHE-ECDSA-AES256-GCM-SHA384", tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "HIGH ECDHE EECDH kECDHE kEECDH aECDSA ECDSA AES AES256 AESGCM SHA384 TLSv1.2"},
	{"ECDHE-RSA-AES256-GCM-SHA384", tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "HIGH ECDHE EECDH kECDHE kEECDH aRSA AES AES256 AESGCM SHA384 TLSv1.2"},
	{"ECDHE-ECDSA-CHACHA20-POLY1305", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "HIGH ECDHE EECDH kECDHE kEECDH aECDSA ECDSA CHACHA20 SHA256 TLSv1.2"},
	{"ECDHE-RSA-CHACHA20-POLY1305", tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "HIGH ECDHE EECDH kECDHE kEECDH aRSA CHACHA20 SHA256 TLSv1.2"},
	{"ECDHE-ECDSA-AES128-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "HIGH ECDHE EECDH kECDHE kEECDH aECDSA ECDSA AES AES128 SHA1 SHA TLSv1 SSLv3"},
	{"ECDHE-RSA-AES128-SHA", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "HIGH ECDHE EECDH kECDHE kEECDH aRSA AES AES128 SHA1 SHA TLSv1 SSLv3"},
	{"ECDHE-ECDSA-AES256-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "HIGH ECDHE EECDH kECDHE kEECDH aECDSA ECDSA AES AES256 SHA1 SHA TLSv1 SSLv3"},
	{"ECDHE-RSA-AES256-SHA", tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "HIGH ECDHE EECDH kECDHE kEECDH aRSA AES AES256 SHA1 SHA TLSv1 SSLv3"},
	{"AES128-GCM-SHA256", tls.TLS_RSA_WITH_AES_128_GCM_SHA256, "HIGH RSA kRSA aRSA AES AES128 AESGCM SHA256 TLSv1.2"},
	{"AES256-GCM-SHA384", tls.TLS_RSA_WITH_AES_256_GCM_SHA384, "HIGH RSA kRSA aRSA AES AES256 AESGCM SHA384 TLSv1.2"},
	{"AES128-SHA", tls.TLS_RSA_WITH_AES_128_CBC_SHA, "HIGH RSA kRSA aRSA AES AES128 SHA1 SHA TLSv1 SSLv3"},
	{"AES256-SHA", tls.TLS_RSA_WITH_AES_256_CBC_SHA, "HIGH RSA kRSA aRSA AES AES256 SHA1 SHA TLSv1 SSLv3"},
	{"ECDHE-ECDSA-AES128-SHA256", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, "HIGH ECDHE EECDH kECDHE kEECDH aECDSA ECDSA AES AES128 SHA256 TLSv1.2"},
	{"ECDHE-RSA-AES128-SHA256", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "HIGH ECDHE EECDH kECDHE kEECDH aRSA AES AES128 SHA256 TLSv1.2"},
	{"AES128-SHA256", tls.TLS_RSA_WITH_AES_128_CBC_SHA256, "HIGH RSA kRSA aRSA AES AES128 SHA256 TLSv1.2"},
	{"ECDHE-RSA-DES-CBC3-SHA", tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, "MEDIUM ECDHE EECDH kECDHE kEECDH aRSA 3DES SHA1 SHA TLSv1 SSLv3"},
	{"DES-CBC3-SHA", tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, "MEDIUM RSA kRSA aRSA 3DES SHA1 SHA TLSv1 SSLv3"},
}

// errCiphersPrefix begins memcached's startup error for an ssl_ciphers
// list that selects no suite.
const errCiphersPrefix = "Error setting the provided cipher(s): "

// ParseCiphers turns an OpenSSL cipher list (memcached's ssl_ciphers, for
// TLS 1.2 and older) into crypto/tls suites. Elements are separated by
// ':' (or spaces); each is a suite's OpenSSL name or an alias (HIGH,
// MEDIUM, DEFAULT, ALL, ECDHE, AESGCM, CHACHA20, aRSA, …, joined with '+'
// to intersect), added as given, removed with '-', removed for good with
// '!', or moved to the end with '+'; @STRENGTH and @SECLEVEL=n are
// accepted and ignored. As OpenSSL does, names it does not know select
// nothing, and the list is refused only when it selects nothing — here,
// nothing crypto/tls implements (DHE, CAMELLIA, ARIA, PSK suites are
// OpenSSL's only). The error is memcached's message. TLS 1.3 suites are
// not configurable, in crypto/tls as with ssl_ciphers.
func ParseCiphers(list string) ([]uint16, error) {
	var sel []int // indexes into ciphers, in order
	banned := map[int]bool{}
	for _, el := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ' ' || r == ',' || r == ';' }) {
		if strings.HasPrefix(el, "@") {
			continue
		}
		op := byte(0)
		if strings.ContainsRune("!-+", rune(el[0])) {
			op, el = el[0], el[1:]
		}
		matched := cipherMatches(el)
		switch op {
		case 0:
			for _, i := range matched {
				if !banned[i] && !slices.Contains(sel, i) {
					sel = append(sel, i)
				}
			}
		case '-', '!':
			sel = slices.DeleteFunc(sel, func(i int) bool { return slices.Contains(matched, i) })
			if op == '!' {
				for _, i := range matched {
					banned[i] = true
				}
			}
		case '+':
			var moved []int
			sel = slices.DeleteFunc(sel, func(i int) bool {
				if slices.Contains(matched, i) {
					moved = append(moved, i)
					return true
				}
				return false
			})
			sel = append(sel, moved...)
		}
	}
	if len(sel) == 0 {
		return nil, errors.New(errCiphersPrefix + list)
	}
	ids := make([]uint16, len(sel))
	for i, c := range sel {
		ids[i] = ciphers[c].id
	}
	return ids, nil
}

// cipherMatches returns the ciphers an element (a name, an alias, or
// aliases joined by '+') selects.
func cipherMatches(el string) []int {
	var out []int
	parts := strings.Split(el, "+")
	for i, c := range ciphers {
		ok := true
		for _, p := range parts {
			if !cipherHas(c, p) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, i)
		}
	}
	return out
}

// cipherHas reports whether alias (or name) selects c.
func cipherHas(c cipher, alias string) bool {
	switch alias {
	case c.name:
		return true
	case "ALL", "COMPLEMENTOFNONE":
		return true
	case "DEFAULT":
		// OpenSSL's default is ALL less the weak; crypto/tls's
		// default leaves out 3DES and the CBC-SHA256 suites too.
		return slices.Contains(defaultSuites(), c.id)
	}
	return slices.Contains(strings.Fields(c.attrs), alias)
}

// defaultSuites are crypto/tls's secure suites.
func defaultSuites() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		ids = append(ids, s.ID)
	}
	return ids
}
