package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/corvidcache/corvid/internal/mctool"
)

// copyOptions holds the command lines of corvid dump and corvid load.
type copyOptions struct {
	server   string // dump: the source
	output   string
	input    string
	from     string
	to       string
	limit    int
	rate     float64
	progress bool
	timeout  time.Duration
	deadline time.Duration
}

// timeoutHelp says what --timeout and --deadline bound, for the tools'
// help.
const timeoutHelp = `--timeout bounds each wait for a server: the connect, each reply, and
each batch of 100 keys of a metadump (a server that trickles keys is cut
off as a silent one is). --deadline bounds the whole command (0: none),
for cron jobs and scripts. Either stops the tool with one line naming the
server and exit status 1.`

func newDumpCommand() *cobra.Command {
	o := &copyOptions{}
	cmd := &cobra.Command{
		Use:   "dump [-s host:port] [-o file]",
		Short: "Copy a memcached-protocol server's items to a dump file",
		Long: `Walk the server's keys with lru_crawler metadump (corvid, memcached 1.6)
and write each item (key, flags, absolute expiry, value) to a corvid dump
file, which corvid load reads back. Values are read in pipelined batches
as the keys arrive, so the tool's memory stays small whatever the cache's
size; the progress bar's total is the server's curr_items, an estimate
that the final count replaces. The format is described in package
internal/mctool: a header line, one checksummed record per item, and an END
line with the record count.

` + timeoutHelp,
		Example: `  corvid dump -s 10.0.0.5:11211 -o cache.dump
  corvid load -i cache.dump --to 10.0.0.6:11211`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.dump(cmd); err != nil {
				return fmt.Errorf("corvid dump: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.server, "server", "s", "127.0.0.1:11211", "server host:port")
	f.StringVarP(&o.output, "output", "o", "-", "dump file (- for standard output)")
	f.IntVar(&o.limit, "limit", 0, "dump at most this many keys (0: all)")
	o.commonFlags(cmd)
	return cmd
}

func newLoadCommand() *cobra.Command {
	o := &copyOptions{}
	cmd := &cobra.Command{
		Use:   "load (-i file | --from host:port) --to host:port",
		Short: "Store a dump file's items, or another server's, into a memcached-protocol server",
		Long: `Store every item of a corvid dump file (-i), or of a running server
(--from, walked as corvid dump does), into the --to server, keeping flags
and the remaining time to live. Items that have expired by the time they
would be sent are skipped and counted. A truncated or corrupt file stops the
load at its first bad record, which is named; what was stored before it
stays, and the exit status is 1.

` + timeoutHelp,
		Example: `  corvid load -i cache.dump --to 127.0.0.1:11211 --rate 50000
  corvid load --from 10.0.0.5:11211 --to 10.0.0.6:11211 --progress`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.load(cmd); err != nil {
				return fmt.Errorf("corvid load: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.input, "input", "i", "", "dump file to read (- for standard input)")
	f.StringVar(&o.from, "from", "", "server host:port to copy from")
	f.StringVar(&o.to, "to", "", "server host:port to store into")
	f.Float64Var(&o.rate, "rate", 0, "store at most this many items a second (0: no limit)")
	o.commonFlags(cmd)
	return cmd
}

func (o *copyOptions) commonFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.progress, "progress", false, "show a progress bar on stderr even when it is not a terminal")
	f.DurationVar(&o.timeout, "timeout", mctool.DefaultTimeout, "bound on each wait for a server (connect, reply, 100 metadump keys)")
	f.DurationVar(&o.deadline, "deadline", 0, "bound on the whole command (0: none)")
}

// sameServer reports whether the addresses a and b (valid for
// mctool.ParseAddr) name one server: the same port on a host whose
// addresses overlap, as "localhost:11211" and "127.0.0.1:11211" do. A
// host that does not resolve is compared by name.
func sameServer(ctx context.Context, a, b string) bool {
	a, _ = mctool.ParseAddr(a)
	b, _ = mctool.ParseAddr(b)
	if a == b {
		return true
	}
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips := func(h string) []string {
		if addrs, err := net.DefaultResolver.LookupHost(ctx, h); err == nil {
			return addrs
		}
		return []string{h}
	}
	ib := ips(hb)
	for _, x := range ips(ha) {
		for _, y := range ib {
			if ix, iy := net.ParseIP(x), net.ParseIP(y); x == y || ix != nil && ix.Equal(iy) {
				return true
			}
		}
	}
	return false
}

// withDeadline returns ctx bounded by d (unless 0), its cause naming
// the flag.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("--deadline %v passed", d))
}

// errInterrupted is the cause of a tool's context when a signal stops it.
var errInterrupted = errors.New("interrupted")

// interruptible returns ctx cancelled by SIGINT or SIGTERM, with
// errInterrupted as its cause. After the first signal the signals' own
// action is back, so a second one ends the tool at once. stop releases
// the signals.
func interruptible(ctx context.Context) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-sig:
			cancel(fmt.Errorf("%w by %v", errInterrupted, s))
		case <-ctx.Done():
		}
		signal.Stop(sig)
	}()
	return ctx, func() {
		cancel(nil)
		<-done
	}
}

// interrupted returns the signal that stopped ctx in place of err (a
// bare context.Canceled), or err.
func interrupted(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errInterrupted) && errors.Is(err, context.Canceled) {
		return cause
	}
	return err
}

// bar returns a progress bar on stderr when it is a terminal or
// --progress was given, else nil.
func (o *copyOptions) bar(cmd *cobra.Command, total int64, desc string, bytes bool) *progressbar.ProgressBar {
	if !o.showBar(cmd) {
		return nil
	}
	w := cmd.ErrOrStderr()
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionSetItsString("items"), progressbar.OptionShowIts())
	}
	return progressbar.NewOptions64(total, opts...)
}

// showBar reports whether to show a progress bar: stderr is a terminal,
// or --progress was given.
func (o *copyOptions) showBar(cmd *cobra.Command) bool {
	f, isFile := cmd.ErrOrStderr().(*os.File)
	return o.progress || isFile && term.IsTerminal(int(f.Fd()))
}

// itemBar returns the progress bar of a walk of c's items (a no-op
// unless o.bar shows one), sized by the server's count of items.
func (o *copyOptions) itemBar(cmd *cobra.Command, c *mctool.Conn, desc string) (*estimateBar, error) {
	if !o.showBar(cmd) {
		return &estimateBar{}, nil
	}
	n, err := c.ItemCount()
	if err != nil {
		return nil, err
	}
	if o.limit > 0 {
		n = min(n, int64(o.limit))
	}
	return &estimateBar{bar: o.bar(cmd, max(n, 1), desc, false), max: max(n, 1)}, nil
}

// estimateBar is a progress bar over a count known beforehand only as an
// estimate (items are stored, deleted and expire during a walk): it never
// fills before finish, which sets the final count. A zero estimateBar
// shows nothing.
type estimateBar struct {
	bar    *progressbar.ProgressBar
	n, max int64
}

func (b *estimateBar) add() {
	if b.bar == nil {
		return
	}
	b.n++
	if b.n >= b.max {
		b.max = b.n + 1 + b.n/10
		b.bar.ChangeMax64(b.max)
	}
	b.bar.Add(1)
}

func (b *estimateBar) finish() {
	if b.bar == nil || b.n == 0 {
		return
	}
	b.bar.ChangeMax64(b.n)
	b.bar.Finish()
}

func context0(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func (o *copyOptions) dump(cmd *cobra.Command) (err error) {
	if o.limit < 0 {
		return errors.New("--limit must not be negative")
	}
	ctx, stop := interruptible(context0(cmd))
	defer stop()
	ctx, cancel := withDeadline(ctx, o.deadline)
	defer cancel()
	c, err := mctool.Dial(ctx, o.server, o.timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	out := cmd.OutOrStdout()
	name := "standard output"
	if o.output != "-" && o.output != "" {
		f, err := os.Create(o.output)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = cerr
			}
		}()
		out, name = f, o.output
	}
	w, err := mctool.NewWriter(out, c.Addr(), time.Now())
	if err != nil {
		return err
	}
	bar, err := o.itemBar(cmd, c, "dump")
	if err != nil {
		return err
	}
	st, err := c.Walk(o.limit, func(r mctool.Record) error {
		bar.add()
		return w.Write(r)
	})
	bar.finish()
	if err != nil {
		// Keep every record read, each whole: the file then ends
		// without its END line, which load reports as the end.
		if ferr := w.Flush(); ferr != nil {
			return err
		}
		return fmt.Errorf("%w; %s holds the %d items read before, without its END line", interrupted(ctx, err), name, w.Records())
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "dumped %d items of %s to %s (%d gone before they were read, %d with keys longer than 250 bytes)\n",
		st.Records, c.Addr(), name, st.Gone, st.Unsendable)
	return nil
}

func (o *copyOptions) load(cmd *cobra.Command) error {
	ctx, stop := interruptible(context0(cmd))
	defer stop()
	ctx, cancel := withDeadline(ctx, o.deadline)
	defer cancel()
	switch {
	case o.to == "":
		return errors.New("give the server to load into with --to host:port")
	case o.input != "" && o.from != "":
		return errors.New("give -i or --from, not both")
	case o.input == "" && o.from == "":
		return errors.New("give a dump file with -i or a server with --from")
	case o.rate < 0:
		return errors.New("--rate must not be negative")
	}
	if _, err := mctool.ParseAddr(o.to); err != nil {
		return err
	}
	if o.from != "" {
		if _, err := mctool.ParseAddr(o.from); err != nil {
			return err
		}
		if sameServer(ctx, o.from, o.to) {
			return fmt.Errorf("--from %s and --to %s name the same server: it would store its own items over themselves", o.from, o.to)
		}
	}
	dst, err := mctool.Dial(ctx, o.to, o.timeout)
	if err != nil {
		return err
	}
	defer dst.Close()
	// Check the target first: an empty source sends it nothing.
	if _, err := dst.Version(); err != nil {
		return err
	}
	l := mctool.NewLoader(dst, mctool.LoadConfig{Rate: o.rate})
	if o.from != "" {
		err = o.loadFromServer(cmd, ctx, l)
	} else {
		err = o.loadFromFile(cmd, l)
	}
	st := l.Stats()
	msg := fmt.Sprintf("loaded %d items into %s; skipped %d expired, %d with keys longer than 250 bytes", st.Loaded, dst.Addr(), st.Expired, st.Unsendable)
	if st.Failed > 0 {
		msg += fmt.Sprintf("; %d refused (first: %s)", st.Failed, st.FirstError)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), msg)
	if err == nil && st.Failed > 0 {
		err = fmt.Errorf("%s refused %d items", dst.Addr(), st.Failed)
	}
	return interrupted(ctx, err)
}

func (o *copyOptions) loadFromServer(cmd *cobra.Command, ctx context.Context, l *mctool.Loader) error {
	src, err := mctool.Dial(ctx, o.from, o.timeout)
	if err != nil {
		return err
	}
	defer src.Close()
	bar, err := o.itemBar(cmd, src, "load")
	if err != nil {
		return err
	}
	_, err = src.Walk(0, func(r mctool.Record) error {
		bar.add()
		return l.Add(r)
	})
	bar.finish()
	if ferr := l.Flush(); err == nil {
		err = ferr
	}
	return err
}

func (o *copyOptions) loadFromFile(cmd *cobra.Command, l *mctool.Loader) error {
	var in io.Reader = cmd.InOrStdin()
	name := "standard input"
	size := int64(-1)
	if o.input != "-" {
		f, err := os.Open(o.input)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in, name = f, o.input
	}
	r, err := mctool.NewReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	bar := o.bar(cmd, size, "load", true)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ferr := l.Flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("%s: %w (the %d records before it were read)", name, err, r.Records())
		}
		if err := l.Add(rec); err != nil {
			return err
		}
		if bar != nil {
			bar.Set64(r.Offset())
		}
	}
	if bar != nil {
		bar.Finish()
	}
	return l.Flush()
}
