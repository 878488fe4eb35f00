package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/corvidcache/corvid/loadgen"
)

// benchOptions holds the command line of corvid bench.
type benchOptions struct {
	cfg      loadgen.Config
	ratio    string
	size     string
	protocol string
	json     bool
	quiet    bool
	tls      bool
	tlsCA    string
}

func newBenchCommand() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench --server HOST:PORT [flags]",
		Short: "Load a memcached-protocol server and report throughput and latency",
		Long: `Drive gets and sets against one or more memcached-protocol servers
(corvid, memcached, twemproxy, ...) and print throughput, latency
percentiles (p50, p90, p99, p99.9), hit ratio and errors. Each connection
keeps --pipeline requests in flight; connection i talks to server i mod the
number of servers. A progress line goes to stderr every second.

Keys are "<prefix><n>" with n below --keys, uniform or Zipf-skewed
(--zipf 0.99 is YCSB's skew). --prefill sets every key first so gets hit.`,
		Example: `  corvid bench --server 127.0.0.1:11211 -c 64 --ratio 9:1 --duration 10s
  corvid bench --server 127.0.0.1:11211 -c 4 --pipeline 16 --ratio 1:0 --prefill
  corvid bench --server 127.0.0.1:11211 --multiget 10 --protocol meta --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.finish(cmd); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := loadgen.Run(ctx, o.cfg)
			if err != nil {
				return fmt.Errorf("corvid bench: %w", err)
			}
			if o.json {
				return res.WriteJSON(cmd.OutOrStdout())
			}
			return res.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.cfg.Servers, "server", "s", nil, "server host:port (repeat or separate with commas for several)")
	f.IntVarP(&o.cfg.Conns, "connections", "c", 16, "busy connections")
	f.IntVar(&o.cfg.Idle, "idle", 0, "extra idle connections held open during the run")
	f.IntVar(&o.cfg.Pipeline, "pipeline", 1, "requests in flight per connection")
	f.IntVar(&o.cfg.MultiGet, "multiget", 1, "keys per get request")
	f.StringVar(&o.ratio, "ratio", "9:1", "get:set proportion, e.g. 9:1, 1:1, 1:0")
	f.IntVar(&o.cfg.Keys, "keys", 100000, "key space: keys <prefix>0 .. <prefix>N-1")
	f.StringVar(&o.cfg.KeyPrefix, "key-prefix", "key:", "key prefix")
	f.Float64Var(&o.cfg.Zipf, "zipf", 0, "key skew: 0 = uniform, else the Zipf exponent (e.g. 0.99)")
	f.StringVar(&o.size, "value-size", "100", "value size in bytes: N, or MIN-MAX drawn uniformly")
	f.DurationVar(&o.cfg.Duration, "duration", 10*time.Second, "measured time")
	f.Int64Var(&o.cfg.Requests, "requests", 0, "stop after this many requests (without --duration: only then)")
	f.DurationVar(&o.cfg.Warmup, "warmup", 0, "unmeasured load before the measurement")
	f.BoolVar(&o.cfg.Prefill, "prefill", false, "set every key once on every server before the run")
	f.StringVar(&o.protocol, "protocol", "text", "text (get/set) or meta (mg/ms)")
	f.DurationVar(&o.cfg.Timeout, "timeout", 10*time.Second, "connect and reply timeout")
	f.Uint64Var(&o.cfg.Seed, "seed", 0, "random seed (0 = fixed default)")
	f.BoolVar(&o.tls, "tls", false, "speak TLS (a server started with -Z); the server's certificate is not checked unless --tls-ca is given")
	f.StringVar(&o.tlsCA, "tls-ca", "", "with --tls, a PEM file of the CAs the server's certificate must chain to")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress lines")
	return cmd
}

// finish turns the string flags into the Config and checks it.
func (o *benchOptions) finish(cmd *cobra.Command) error {
	var servers []string
	for _, s := range o.cfg.Servers {
		servers = append(servers, splitComma(s)...)
	}
	o.cfg.Servers = servers
	var err error
	if o.cfg.GetWeight, o.cfg.SetWeight, err = loadgen.ParseRatio(o.ratio); err != nil {
		return err
	}
	if o.cfg.ValueMin, o.cfg.ValueMax, err = loadgen.ParseSize(o.size); err != nil {
		return err
	}
	o.cfg.Protocol = loadgen.Protocol(o.protocol)
	f := cmd.Flags()
	if o.cfg.Requests > 0 && !f.Changed("duration") {
		o.cfg.Duration = 0
	}
	if f.Changed("duration") && o.cfg.Duration <= 0 {
		return fmt.Errorf("%w: --duration must be positive", loadgen.ErrConfig)
	}
	for _, name := range []string{"connections", "pipeline", "multiget", "keys", "value-size"} {
		if v := f.Lookup(name); v.Changed && v.Value.String() == "0" {
			return fmt.Errorf("%w: --%s must not be 0", loadgen.ErrConfig, name)
		}
	}
	if !o.quiet {
		o.cfg.Progress = cmd.ErrOrStderr()
	}
	if o.tls || o.tlsCA != "" {
		// A load generator measures; it trusts the server it is
		// pointed at unless told which CA to check against.
		o.cfg.TLS = &tls.Config{InsecureSkipVerify: true}
		if o.tlsCA != "" {
			pem, err := os.ReadFile(o.tlsCA)
			if err != nil {
				return fmt.Errorf("%w: %v", loadgen.ErrConfig, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("%w: no PEM certificate in %s", loadgen.ErrConfig, o.tlsCA)
			}
			o.cfg.TLS = &tls.Config{RootCAs: pool}
		}
	}
	return o.cfg.Validate()
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
