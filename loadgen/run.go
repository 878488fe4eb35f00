package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Run phases, in order.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// run is the state shared by the connections of one Run.
type run struct {
	cfg    Config
	keys   *keyDist
	value  []byte
	base   time.Time
	phase  atomic.Int32
	budget atomic.Int64 // measured requests left to issue when cfg.Requests > 0
	getPer uint64       // gets per getPer+setPer requests
	setPer uint64
}

func (r *run) since() int64 { return int64(time.Since(r.base)) }

// Run opens the connections, optionally prefills the key space, runs the
// warm-up and the measured load, and returns what was measured. It stops
// early with ctx's error when ctx is cancelled, and with the first
// connection error (a refused connection, a dropped connection, an
// unparsable reply); error replies from the server are counted, not fatal.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &run{
		cfg:    cfg,
		keys:   newKeyDist(cfg.Keys, cfg.Zipf),
		value:  make([]byte, cfg.ValueMax),
		base:   time.Now(),
		getPer: uint64(cfg.GetWeight),
		setPer: uint64(cfg.SetWeight),
	}
	for i := range r.value {
		r.value[i] = 'a' + byte(i%26)
	}
	r.budget.Store(cfg.Requests)

	var closers []net.Conn
	defer func() {
		for _, nc := range closers {
			nc.Close()
		}
	}()
	for i := range cfg.Idle {
		nc, err := r.dial(cfg.Servers[i%len(cfg.Servers)])
		if err != nil {
			return nil, err
		}
		closers = append(closers, nc)
		if err := newIdleConn(r, nc).version(); err != nil {
			return nil, err
		}
	}
	conns := make([]*conn, cfg.Conns)
	for i := range conns {
		nc, err := r.dial(cfg.Servers[i%len(cfg.Servers)])
		if err != nil {
			return nil, err
		}
		closers = append(closers, nc)
		conns[i] = newConn(r, nc, uint64(i))
		if cfg.Protocol == Meta && i < len(cfg.Servers) {
			if err := conns[i].once("mn\r\n", kindNoop); err != nil {
				return nil, err
			}
		}
	}
	// From here on, unblock reads and writes when ctx ends.
	stopWatch := context.AfterFunc(ctx, func() {
		for _, nc := range closers {
			nc.SetDeadline(time.Now())
		}
	})
	defer stopWatch()
	if cfg.Prefill {
		if err := r.prefill(ctx, conns); err != nil {
			return nil, err
		}
	}

	var measureStart atomic.Int64 // ns since base
	if cfg.Warmup == 0 {
		measureStart.Store(r.since())
		r.phase.Store(phaseMeasure)
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(conns))
	for _, c := range conns {
		wg.Go(func() {
			if err := c.pump(c.issueLoad); err != nil {
				errc <- err
				r.phase.Store(phaseStop)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	progress := newProgress(r, conns)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// The timer ends the warm-up, then the measurement; with neither
	// (--requests alone) it never fires.
	first := cfg.Warmup
	if first == 0 {
		first = cfg.Duration
	}
	phaseTimer := time.NewTimer(first)
	if first == 0 {
		phaseTimer.Stop()
	}
	defer phaseTimer.Stop()
	var ctxErr error
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			progress.line()
		case <-phaseTimer.C:
			if r.phase.Load() == phaseWarmup {
				measureStart.Store(r.since())
				r.phase.CompareAndSwap(phaseWarmup, phaseMeasure)
				if cfg.Duration > 0 {
					phaseTimer.Reset(cfg.Duration)
				}
			} else {
				r.phase.Store(phaseStop)
			}
		case <-ctx.Done():
			ctxErr = ctx.Err()
			r.phase.Store(phaseStop)
			<-done
			break loop
		}
	}
	end := r.since()
	close(errc)
	if ctxErr == nil {
		// The connections may have noticed the cancellation (their
		// deadlines moved) before the loop above did.
		ctxErr = ctx.Err()
	}
	if ctxErr != nil {
		return nil, ctxErr
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	return r.result(conns, time.Duration(end-measureStart.Load())), nil
}

// issueLoad appends the next request of the mixed load, or declines once
// the run stops or the request budget is spent.
func (c *conn) issueLoad() (kind uint8, measured, ok bool) {
	r := c.r
	switch r.phase.Load() {
	case phaseStop:
		return 0, false, false
	case phaseMeasure:
		measured = true
		if r.cfg.Requests > 0 && r.budget.Add(-1) < 0 {
			r.phase.Store(phaseStop)
			return 0, false, false
		}
	}
	if r.setPer == 0 || (r.getPer > 0 && c.rng.Uint64N(r.getPer+r.setPer) < r.getPer) {
		c.appendGet()
		return kindGet, measured, true
	}
	c.appendSet(c.key())
	return kindSet, measured, true
}

// version checks that the server answers on an idle connection.
func (c *conn) version() error { return c.once("version\r\n", kindVersion) }

// once sends one request and waits for its reply.
func (c *conn) once(req string, kind uint8) error {
	sent := false
	return c.pump(func() (uint8, bool, bool) {
		if sent {
			return 0, false, false
		}
		sent = true
		c.wbuf = append(c.wbuf, req...)
		return kind, false, true
	})
}

// prefill sets every key once on every server, the connections of each
// server sharing its keys.
func (r *run) prefill(ctx context.Context, conns []*conn) error {
	nsrv := len(r.cfg.Servers)
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		// Connections i, i+nsrv, ... talk to the same server.
		share := (len(conns) - i%nsrv + nsrv - 1) / nsrv
		next := uint64(i / nsrv)
		step := uint64(share)
		wg.Go(func() {
			errs[i] = c.pump(func() (uint8, bool, bool) {
				if next >= uint64(r.cfg.Keys) || ctx.Err() != nil {
					return 0, false, false
				}
				c.appendSet(next)
				next += step
				return kindSet, false, true
			})
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	var failed int64
	for _, c := range conns {
		failed += c.prefillErr
	}
	if failed > 0 {
		return fmt.Errorf("prefill: %d sets failed", failed)
	}
	return nil
}
