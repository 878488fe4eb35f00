package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Settings are one queue's settings as written in the configuration file;
// a nil field is not set there and is inherited (from the parent queue for
// a fanout queue, then from the defaults).
type Settings struct {
	MaxItems           *int64    `yaml:"max_items"`
	MaxSize            *Size     `yaml:"max_size"`
	MaxItemSize        *Size     `yaml:"max_item_size"`
	MaxAge             *Duration `yaml:"max_age"`
	DiscardOldWhenFull *bool     `yaml:"discard_old_when_full"`
	MaxMemorySize      *Size     `yaml:"max_memory_size"`
	MaxJournalSize     *Size     `yaml:"max_journal_size"`
	Sync               *string   `yaml:"sync"`
	OpenTimeout        *Duration `yaml:"open_timeout"`
	ExpireToQueue      *string   `yaml:"expire_to_queue"`
}

// FileConfig is the YAML configuration file of corvid queue:
//
//	max_open_transactions: 1     # open reads per connection per queue
//	default:                     # every queue
//	  max_item_size: 1MB
//	  sync: never
//	queues:
//	  orders:
//	    max_items: 100000
//	    discard_old_when_full: true
//	  orders+audit:              # a fanout child: inherits orders' settings
//	    max_age: 24h
//	    expire_to_queue: expired
//
// Sizes are bytes or a number with KB, MB, GB (powers of 1024); durations
// are Go durations ("500ms", "24h") or whole seconds.
type FileConfig struct {
	MaxOpenTransactions int                 `yaml:"max_open_transactions"`
	Default             Settings            `yaml:"default"`
	Queues              map[string]Settings `yaml:"queues"`
}

// DefaultMaxItemSize is the largest item a queue takes when its
// max_item_size is not set or is 0: what a client may make the server hold
// for one set.
const DefaultMaxItemSize = 1 << 20

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read queue config %q: %w", path, err)
	}
	return ParseConfig(b)
}

// ParseConfig parses and checks a configuration file's contents.
func ParseConfig(b []byte) (*FileConfig, error) {
	var fc FileConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("cannot parse queue config: %w", err)
	}
	if fc.MaxOpenTransactions < 0 {
		return nil, errors.New("cannot parse queue config: max_open_transactions must not be negative")
	}
	check := func(where string, s Settings) error {
		if s.ExpireToQueue != nil && *s.ExpireToQueue != "" {
			if err := CheckName(*s.ExpireToQueue); err != nil {
				return fmt.Errorf("cannot parse queue config: %s: expire_to_queue: %w", where, err)
			}
		}
		return nil
	}
	if err := check("default", fc.Default); err != nil {
		return nil, err
	}
	for name, s := range fc.Queues {
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("cannot parse queue config: queue %q: %w", name, err)
		}
		if err := check(fmt.Sprintf("queue %q", name), s); err != nil {
			return nil, err
		}
	}
	return &fc, nil
}

// queueSettings are a queue's effective settings.
type queueSettings struct {
	store         StoreConfig
	openTimeout   time.Duration
	expireToQueue string
}

// resolve returns the settings of queue name: built-in defaults, then
// the file's defaults, then the parent's section for a fanout queue, then
// the queue's own.
func (fc *FileConfig) resolve(name, defaultSync string) queueSettings {
	s := queueSettings{store: StoreConfig{MaxItemSize: DefaultMaxItemSize, Sync: defaultSync}}
	if fc == nil {
		return s
	}
	s.apply(fc.Default)
	if parent, _, ok := strings.Cut(name, "+"); ok {
		if p, ok := fc.Queues[parent]; ok {
			s.apply(p)
		}
	}
	if q, ok := fc.Queues[name]; ok {
		s.apply(q)
	}
	if s.store.MaxItemSize <= 0 {
		// No size is "no limit" for a store, but the server must bound
		// what one set makes it hold.
		s.store.MaxItemSize = DefaultMaxItemSize
	}
	return s
}

func (s *queueSettings) apply(o Settings) {
	if o.MaxItems != nil {
		s.store.MaxItems = int(*o.MaxItems)
	}
	if o.MaxSize != nil {
		s.store.MaxSize = int64(*o.MaxSize)
	}
	if o.MaxItemSize != nil {
		s.store.MaxItemSize = int64(*o.MaxItemSize)
	}
	if o.MaxAge != nil {
		s.store.MaxAge = time.Duration(*o.MaxAge)
	}
	if o.DiscardOldWhenFull != nil {
		s.store.DiscardOldWhenFull = *o.DiscardOldWhenFull
	}
	if o.MaxMemorySize != nil {
		s.store.MaxMemorySize = int64(*o.MaxMemorySize)
	}
	if o.MaxJournalSize != nil {
		s.store.MaxJournalSize = int64(*o.MaxJournalSize)
	}
	if o.Sync != nil {
		s.store.Sync = *o.Sync
	}
	if o.OpenTimeout != nil {
		s.openTimeout = time.Duration(*o.OpenTimeout)
	}
	if o.ExpireToQueue != nil {
		s.expireToQueue = *o.ExpireToQueue
	}
}

// Size is a byte count written as a number or with a KB, MB or GB suffix.
type Size int64

// UnmarshalYAML reads a Size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v := strings.ToUpper(strings.TrimSpace(n.Value))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil || i < 0 || i > (1<<62)/mult {
		return fmt.Errorf("line %d: bad size %q", n.Line, n.Value)
	}
	*s = Size(i * mult)
	return nil
}

// Duration is a Go duration ("500ms") or a whole number of seconds.
type Duration time.Duration

// UnmarshalYAML reads a Duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil && i >= 0 && i < 1<<33 {
		*d = Duration(time.Duration(i) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: bad duration %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// CheckName returns an error wrapping ErrBadName for a name no queue may
// have: empty, over 250 bytes, or holding whitespace, a control
// character, '/', '~' or '.' (Kestrel's reserved characters: the name is
// the journal's file name).
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadName, MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c <= ' ' || c == 0x7f:
			return fmt.Errorf("%w: holds a space or control character", ErrBadName)
		case c == '/' || c == '~' || c == '.':
			return fmt.Errorf("%w: holds %q", ErrBadName, c)
		}
	}
	if name[0] == '+' || name[len(name)-1] == '+' {
		return fmt.Errorf("%w: empty fanout parent or child", ErrBadName)
	}
	return nil
}

// MaxNameLength is the longest queue name, in bytes.
const MaxNameLength = 250
