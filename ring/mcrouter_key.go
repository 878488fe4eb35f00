package ring

import (
	"bytes"
	"fmt"
	"math"
)

// hashStop ends the part of an mcrouter key that routes it.
var hashStop = []byte("|#|")

// RoutingKey returns the part of an mcrouter key that decides where it
// goes, as mcrouter's carbon::Keys computes it: without a routing prefix
// "/region/cluster/" (a key starting with '/' that holds two more '/'),
// and up to the first hash stop "|#|" if there is one. mcrouter hashes
// this part, not the whole key, for Ch3, Crc32, WeightedCh3 and shadowing.
// The result shares key's memory. It is pure and safe for concurrent use.
func RoutingKey(key []byte) []byte {
	k := key
	if len(k) > 0 && k[0] == '/' {
		if i := bytes.IndexByte(k[1:], '/'); i >= 0 {
			rest := k[i+2:]
			if j := bytes.IndexByte(rest, '/'); j >= 0 {
				k = rest[j+1:]
			}
		}
	}
	if i := bytes.Index(k, hashStop); i >= 0 {
		k = k[:i]
	}
	return k
}

// RoutingKeyHash is mcrouter's routingKeyHash of a routing key (see
// RoutingKey): SpookyHashV2_32 with seed 0. ShadowRoute compares it with
// a key_fraction_range (see KeyFractionRange); MigrateRoute takes it
// modulo its interval. It is pure and safe for concurrent use.
func RoutingKeyHash(routingKey []byte) uint32 {
	return SpookyHashV2_32(routingKey, 0)
}

// KeyFractionRange is a shadow's "key_fraction_range": [start, end] as
// fractions of the 32-bit hash space, as mcrouter's ShadowSettings holds
// it. A key is shadowed when Lo <= RoutingKeyHash(routing key) <= Hi, both
// ends included, so [0, 1] holds every key and [x, x] at most a few. It
// is a plain value, safe for concurrent use.
type KeyFractionRange struct {
	Lo, Hi uint32
}

// NewKeyFractionRange converts a configured range [start, end] as
// mcrouter's ShadowSettings::setKeyRange does: each end is multiplied by
// 2^32-1 and truncated to an integer. It fails unless
// 0 <= start <= end <= 1, the ranges mcrouter accepts.
func NewKeyFractionRange(start, end float64) (KeyFractionRange, error) {
	if !(0 <= start && start <= end && end <= 1) {
		return KeyFractionRange{}, fmt.Errorf("%w [%v, %v]", ErrKeyFractionRange, start, end)
	}
	return KeyFractionRange{Lo: uint32(start * math.MaxUint32), Hi: uint32(end * math.MaxUint32)}, nil
}

// Contains reports whether a key with this routing key (see RoutingKey)
// falls in the range, that is whether mcrouter's ShadowRoute shadows it
// (before its requests_fraction sampling).
func (r KeyFractionRange) Contains(routingKey []byte) bool {
	h := RoutingKeyHash(routingKey)
	return r.Lo <= h && h <= r.Hi
}
