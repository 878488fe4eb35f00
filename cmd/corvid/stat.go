package main

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/corvidcache/corvid/internal/mctool"
)

// statOptions holds the command line of corvid stat.
type statOptions struct {
	servers  []string
	json     bool
	timeout  time.Duration
	deadline time.Duration
}

// statModes maps corvid stat's table modes to their stats subcommand and
// layout.
var statModes = map[string]struct {
	sub   string
	style mctool.TableStyle
}{
	"stats":    {"", mctool.StatsStyle},
	"settings": {"settings", mctool.SettingsStyle},
	"sizes":    {"sizes", mctool.SizesStyle},
	"items":    {"items", mctool.SettingsStyle},
	"slabs":    {"slabs", mctool.SettingsStyle},
	"conns":    {"conns", mctool.SettingsStyle},
}

func newStatCommand() *cobra.Command {
	o := &statOptions{}
	cmd := &cobra.Command{
		Use:   "stat [-s host:port,...] [display|stats|settings|sizes|items|slabs|conns|dump|keys] [limit]",
		Short: "Show a memcached-protocol server's slabs, stats, keys and values, as memcached-tool does",
		Long: `Print what memcached-tool prints, for corvid and memcached alike:

  display   the slab class table (the default)
  stats     general stats; with several servers, one column each
  settings, sizes, items, slabs, conns
            the "stats <mode>" table
  keys      one lru_crawler metadump line per key (up to limit keys)
  dump      every item (up to limit) as a replayable "add key flags exp bytes"
            command and its data, as memcached-tool's dump

With --json, display and the tables print one JSON document; keys and dump
print one JSON object per line, each naming its server (dump's values in
base64). A key that is not UTF-8, which a JSON string cannot hold, also
comes in base64 as key_base64 (its "key" then has U+FFFD for the bad
bytes); any other key is exact in "key".

` + timeoutHelp,
		Example: `  corvid stat -s 10.0.0.5:11211
  corvid stat -s 10.0.0.5:11211,10.0.0.6:11211 stats
  corvid stat -s 10.0.0.5 keys 100 --json`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args); err != nil {
				return fmt.Errorf("corvid stat: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.servers, "server", "s", []string{"127.0.0.1:11211"}, "server host:port (repeat or separate with commas for several)")
	f.BoolVar(&o.json, "json", false, "print JSON")
	f.DurationVar(&o.timeout, "timeout", mctool.DefaultTimeout, "bound on each wait for a server (connect, reply, 100 metadump keys)")
	f.DurationVar(&o.deadline, "deadline", 0, "bound on the whole command (0: none)")
	return cmd
}

// parseAddrs splits and checks -s values.
func parseAddrs(specs []string) ([]string, error) {
	var out []string
	for _, s := range specs {
		parts := splitComma(s)
		if len(parts) == 0 {
			parts = []string{""}
		}
		for _, p := range parts {
			a, err := mctool.ParseAddr(p)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
	}
	return out, nil
}

func (o *statOptions) run(ctx context.Context, out, errOut io.Writer, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := withDeadline(ctx, o.deadline)
	defer cancel()
	mode := "display"
	if len(args) > 0 {
		mode = args[0]
	}
	limit := 0
	if len(args) == 2 {
		if mode != "dump" && mode != "keys" {
			return fmt.Errorf("mode %s takes no limit", mode)
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("invalid limit %q (should be a positive number)", args[1])
		}
		limit = n
	}
	if _, ok := statModes[mode]; !ok && mode != "display" && mode != "dump" && mode != "keys" {
		return fmt.Errorf("unknown mode %q (want display, stats, settings, sizes, items, slabs, conns, dump or keys)", mode)
	}
	addrs, err := parseAddrs(o.servers)
	if err != nil {
		return err
	}
	conns := make([]*mctool.Conn, 0, len(addrs))
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, a := range addrs {
		c, err := mctool.Dial(ctx, a, o.timeout)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	switch mode {
	case "display":
		return o.display(out, conns)
	case "keys":
		return o.keys(out, conns, limit)
	case "dump":
		return o.dump(out, errOut, conns, limit)
	}
	m := statModes[mode]
	all := make([][]mctool.Stat, len(conns))
	for i, c := range conns {
		if all[i], err = c.Stats(m.sub); err != nil {
			return err
		}
	}
	if o.json {
		type server struct {
			Server string            `json:"server"`
			Stats  map[string]string `json:"stats"`
		}
		var v []server
		for i, a := range addrs {
			v = append(v, server{a, mctool.StatMap(all[i])})
		}
		return writeJSON(out, v)
	}
	return mctool.WriteTable(out, m.style, addrs, all)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (o *statOptions) display(out io.Writer, conns []*mctool.Conn) error {
	type server struct {
		Server string             `json:"server"`
		Slabs  []mctool.SlabClass `json:"slabs"`
	}
	var all []server
	for _, c := range conns {
		items, err := c.Stats("items")
		if err != nil {
			return err
		}
		slabs, err := c.Stats("slabs")
		if err != nil {
			return err
		}
		all = append(all, server{c.Addr(), mctool.SlabTable(items, slabs)})
	}
	if o.json {
		for i := range all {
			if all[i].Slabs == nil {
				all[i].Slabs = []mctool.SlabClass{}
			}
		}
		return writeJSON(out, all)
	}
	for _, s := range all {
		if len(all) > 1 {
			fmt.Fprintf(out, "#%s\n", s.Server)
		}
		if err := mctool.WriteDisplay(out, s.Slabs); err != nil {
			return err
		}
	}
	return nil
}

func (o *statOptions) keys(out io.Writer, conns []*mctool.Conn, limit int) error {
	enc := json.NewEncoder(out)
	for _, c := range conns {
		err := c.Metadump(limit, func(k mctool.KeyInfo) error {
			if o.json {
				return enc.Encode(struct {
					Server string `json:"server"`
					mctool.KeyInfo
					KeyBase64 string `json:"key_base64,omitempty"`
				}{c.Addr(), k, keyBase64(k.Key)})
			}
			_, err := io.WriteString(out, k.Line+"\n")
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (o *statOptions) dump(out, errOut io.Writer, conns []*mctool.Conn, limit int) error {
	enc := json.NewEncoder(out)
	for _, c := range conns {
		unreplayable := 0
		st, err := c.Walk(limit, func(r mctool.Record) error {
			if !o.json && !mctool.TextKey(r.Key) && base64.StdEncoding.EncodedLen(len(r.Key)) > 250 {
				unreplayable++ // no text or meta command names it
				return nil
			}
			if o.json {
				return enc.Encode(struct {
					Server    string `json:"server"`
					Key       string `json:"key"`
					KeyBase64 string `json:"key_base64,omitempty"`
					Flags     uint32 `json:"flags"`
					Exp       int64  `json:"exp"`
					Value     []byte `json:"value"`
				}{c.Addr(), r.Key, keyBase64(r.Key), r.Flags, r.Exp, r.Value})
			}
			if err := writeAdd(out, r); err != nil {
				return err
			}
			_, err := fmt.Fprintf(out, "%s\r\n", r.Value)
			return err
		})
		if err != nil {
			return err
		}
		if n := st.Unsendable + unreplayable; n > 0 {
			fmt.Fprintf(errOut, "%s: %d keys left out: no text or meta command can name them (binary keys over 186 bytes)\n", c.Addr(), n)
		}
	}
	return nil
}

// keyBase64 returns key in base64 when a JSON string cannot hold it
// (it is not UTF-8: encoding/json would replace its bad bytes with
// U+FFFD), else "": --json output then carries key_base64 beside key.
func keyBase64(key string) string {
	if utf8.ValidString(key) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(key))
}

// writeAdd writes the command line that adds r back, as memcached-tool's
// dump does ("add <key> <flags> <exp> <bytes>"); a key the text protocol
// cannot carry (spaces, control bytes) is written as the equivalent meta
// command with the key in base64 ("ms <base64> <bytes> b F<flags>
// T<exp> ME").
func writeAdd(w io.Writer, r mctool.Record) error {
	if mctool.TextKey(r.Key) {
		_, err := fmt.Fprintf(w, "add %s %d %d %d\r\n", r.Key, r.Flags, r.Exp, len(r.Value))
		return err
	}
	_, err := fmt.Fprintf(w, "ms %s %d b F%d T%d ME\r\n", base64.StdEncoding.EncodeToString([]byte(r.Key)), len(r.Value), r.Flags, r.Exp)
	return err
}
