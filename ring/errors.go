package ring

import (
	"errors"
	"fmt"
)

// ErrNoServers is returned by New for a configuration without servers.
var ErrNoServers = errors.New("ring: no servers")

// unknownError names a hash or distribution that ring does not know.
type unknownError struct{ what, name string }

func (e *unknownError) Error() string {
	return fmt.Sprintf("ring: unknown %s %q", e.what, e.name)
}

// ErrKeyFractionRange is returned by NewKeyFractionRange for a range
// mcrouter refuses.
var ErrKeyFractionRange = errors.New("ring: invalid key_fraction_range")
