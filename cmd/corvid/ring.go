package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/ring"
)

// ringOptions holds the command line of corvid ring.
type ringOptions struct {
	conf    string
	pool    string
	servers []string
	add     []string
	remove  []string
	keys    int
	hash    string
}

func newRingCommand() *cobra.Command {
	o := &ringOptions{}
	cmd := &cobra.Command{
		Use:   "ring (-c nutcracker.yml [--pool NAME] KEY... | --servers A,B,... [--add C] [--remove B] [--keys N])",
		Short: "Show which server holds a key, or how many keys move when servers change",
		Long: `With -c, print KEY<TAB>SERVER for each key as twemproxy places it in the pool.

With --servers, place --keys keys on the servers before and after --add and
--remove, and print how many stay in place with modula and with ketama, and
each server's share of the keys.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch {
			case o.conf != "" && len(o.servers) > 0:
				return errors.New("corvid ring: give -c or --servers, not both")
			case o.conf != "":
				return o.lookup(out, args)
			case len(o.servers) > 0:
				if len(args) > 0 {
					return errors.New("corvid ring: keys are looked up with -c")
				}
				return o.compare(out)
			}
			return errors.New("corvid ring: give -c nutcracker.yml or --servers")
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.conf, "conf-file", "c", "", "nutcracker.yml to read the pool from")
	f.StringVar(&o.pool, "pool", "", "pool to use (needed when the file has several)")
	f.StringSliceVar(&o.servers, "servers", nil, "servers host:port[:weight], comma-separated")
	f.StringSliceVar(&o.add, "add", nil, "servers added")
	f.StringSliceVar(&o.remove, "remove", nil, "servers removed")
	f.IntVar(&o.keys, "keys", 100000, "number of keys to place")
	f.StringVar(&o.hash, "hash", "md5", "key hash ("+strings.Join(ring.HashNames(), ", ")+")")
	return cmd
}

// lookup prints the server of each key in the pool.
func (o *ringOptions) lookup(out io.Writer, keys []string) error {
	cfg, err := nutcracker.Load(o.conf)
	if err != nil {
		return err
	}
	var p *nutcracker.Pool
	switch {
	case o.pool != "":
		var ok bool
		if p, ok = cfg.Pool(o.pool); !ok {
			return fmt.Errorf("corvid ring: no pool %q in %s", o.pool, o.conf)
		}
	case len(cfg.Pools) == 1:
		p = &cfg.Pools[0]
	default:
		var names []string
		for _, p := range cfg.Pools {
			names = append(names, p.Name)
		}
		return fmt.Errorf("corvid ring: %s has pools %s: choose one with --pool", o.conf, strings.Join(names, ", "))
	}
	r, err := p.Ring()
	if err != nil {
		return err
	}
	for _, k := range keys {
		fmt.Fprintf(out, "%s\t%s\n", k, r.Servers()[r.PickString(k)].Addr)
	}
	return nil
}

// parseServers parses "host:port[:weight]" entries.
func parseServers(specs []string) ([]ring.Server, error) {
	var out []ring.Server
	for _, s := range specs {
		s = strings.TrimSpace(s)
		srv := ring.Server{Addr: s, Weight: 1}
		if strings.Count(s, ":") == 2 {
			i := strings.LastIndexByte(s, ':')
			w, err := strconv.Atoi(s[i+1:])
			if err != nil || w < 1 {
				return nil, fmt.Errorf("corvid ring: bad weight in %q", s)
			}
			srv = ring.Server{Addr: s[:i], Weight: w}
		}
		if !strings.Contains(srv.Addr, ":") {
			return nil, fmt.Errorf("corvid ring: server %q is not host:port", s)
		}
		out = append(out, srv)
	}
	return out, nil
}

// compare prints how many keys keep their server when the pool changes.
func (o *ringOptions) compare(out io.Writer) error {
	before, err := parseServers(o.servers)
	if err != nil {
		return err
	}
	added, err := parseServers(o.add)
	if err != nil {
		return err
	}
	if o.keys < 1 {
		return errors.New("corvid ring: --keys must be positive")
	}
	removed := map[string]bool{}
	for _, r := range o.remove {
		removed[strings.TrimSpace(r)] = true
	}
	var after []ring.Server
	for _, s := range before {
		if !removed[s.Addr] {
			after = append(after, s)
		}
		delete(removed, s.Addr)
	}
	for r := range removed {
		return fmt.Errorf("corvid ring: --remove %s is not among --servers", r)
	}
	after = append(after, added...)
	if len(after) == 0 {
		return errors.New("corvid ring: no servers left")
	}

	keys := make([][]byte, o.keys)
	for i := range keys {
		keys[i] = []byte("key:" + strconv.Itoa(i))
	}
	fmt.Fprintf(out, "%d keys, %d servers -> %d servers, hash %s\n\n", o.keys, len(before), len(after), o.hash)
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "distribution\tkept\tmoved\tkept %")
	shares := map[ring.Distribution][]int{}
	for _, d := range []ring.Distribution{ring.Modula, ring.Ketama} {
		rb, err := ring.New(ring.Config{Servers: before, Distribution: d, Hash: o.hash})
		if err != nil {
			return err
		}
		ra, err := ring.New(ring.Config{Servers: after, Distribution: d, Hash: o.hash})
		if err != nil {
			return err
		}
		kept := 0
		share := make([]int, len(after))
		for _, k := range keys {
			b, a := rb.Pick(k), ra.Pick(k)
			share[a]++
			if before[b].Addr == after[a].Addr {
				kept++
			}
		}
		shares[d] = share
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\n", d, kept, o.keys-kept, 100*float64(kept)/float64(o.keys))
	}
	tw.Flush()
	if common := len(after) - len(added); common > 0 && len(added) > 0 && len(removed) == 0 && len(o.remove) == 0 {
		fmt.Fprintf(out, "(consistent hashing ideal: n/(n+m) = %d/%d = %.1f%%)\n", len(before), len(after), 100*float64(len(before))/float64(len(after)))
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tweight\tmodula share\tketama share")
	for i, s := range after {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.1f%%\n", s.Addr, s.Weight,
			100*float64(shares[ring.Modula][i])/float64(o.keys), 100*float64(shares[ring.Ketama][i])/float64(o.keys))
	}
	return tw.Flush()
}
