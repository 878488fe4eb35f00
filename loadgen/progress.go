package loadgen

import (
	"fmt"
	"time"
)

// progress prints a line a second to Config.Progress.
type progress struct {
	r        *run
	conns    []*conn
	lastDone int64
	last     time.Time
	start    time.Time
}

func newProgress(r *run, conns []*conn) *progress {
	now := time.Now()
	p := &progress{r: r, conns: conns, last: now, start: now}
	for _, c := range conns {
		p.lastDone += c.c.done.Load() // prefill replies
	}
	return p
}

func (p *progress) line() {
	if p.r.cfg.Progress == nil {
		return
	}
	var done, getKeys, hits, errs int64
	for _, c := range p.conns {
		done += c.c.done.Load()
		getKeys += c.c.getKeys.Load()
		hits += c.c.hits.Load()
		errs += c.c.errors.Load()
	}
	now := time.Now()
	rate := float64(done-p.lastDone) / now.Sub(p.last).Seconds()
	p.lastDone, p.last = done, now
	phase := "run"
	switch p.r.phase.Load() {
	case phaseWarmup:
		phase = "warm-up"
	case phaseStop:
		phase = "stopping"
	}
	hit := "-"
	if getKeys > 0 {
		hit = fmt.Sprintf("%.1f%%", 100*float64(hits)/float64(getKeys))
	}
	fmt.Fprintf(p.r.cfg.Progress, "[%3.0fs] %-8s %10.0f ops/s  hits %s  errors %d\n",
		now.Sub(p.start).Seconds(), phase, rate, hit, errs)
}
