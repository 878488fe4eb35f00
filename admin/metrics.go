package admin

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// metricsPage serves /metrics from pages rendered at most once per maxAge:
// building the families with client_golang costs a few milliseconds of
// CPU per scrape (about 12,000 allocations for a server with a dozen slab
// classes), which at ten scrapes a second took a measurable part of a
// loaded server's get throughput. With the page kept for a second, any
// scrape rate costs at most one render a second. It is safe for
// concurrent use; concurrent scrapes of a stale page wait for one render.
type metricsPage struct {
	g      prometheus.Gatherer
	maxAge time.Duration // <= 0: render on every scrape

	mu    sync.Mutex // guards at, mfs, pages
	at    time.Time  // when mfs were gathered
	mfs   []*dto.MetricFamily
	pages map[expfmt.Format][]byte // mfs encoded, by format; never modified once stored
}

func (p *metricsPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.Negotiate(r.Header)
	body, err := p.page(format, time.Now())
	if err != nil {
		http.Error(w, "cannot gather metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", string(format))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// page returns the page in format, rendering it when the families
// gathered last are older than maxAge.
func (p *metricsPage) page(format expfmt.Format, now time.Time) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pages == nil || p.maxAge <= 0 || now.Sub(p.at) >= p.maxAge || now.Before(p.at) {
		mfs, err := p.g.Gather()
		if err != nil {
			return nil, err
		}
		p.at, p.mfs, p.pages = now, mfs, map[expfmt.Format][]byte{}
	}
	if body, ok := p.pages[format]; ok {
		return body, nil
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range p.mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return nil, err
		}
	}
	p.pages[format] = buf.Bytes()
	return buf.Bytes(), nil
}
