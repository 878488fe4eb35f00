package admin

import (
	"errors"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// A family is one metric family a collector emits, described once: its
// name, help text, type and label names. The collectors of this package
// (memcached's, twemproxy's) are tables of families filled on each scrape
// from a snapshot the daemon takes without locks on its data path; a new
// daemon's metrics are a new table and a function that fills it.
type family struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func newFamily(name, help string, typ prometheus.ValueType, labels ...string) *family {
	return &family{desc: prometheus.NewDesc(name, help, labels, nil), typ: typ}
}

// emit sends one sample of f.
func (f *family) emit(ch chan<- prometheus.Metric, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(f.desc, f.typ, v, labels...)
}

// errNoStat reports a stat a family is derived from that the snapshot
// lacks.
var errNoStat = errors.New("admin: stat not reported")

// statValue parses a stat as memcached prints it: a number, "yes"/"no",
// or a "seconds.microseconds" time.
func statValue(stats map[string]string, key string) (float64, error) {
	s, ok := stats[key]
	if !ok {
		return 0, errNoStat
	}
	switch s {
	case "yes":
		return 1, nil
	case "no":
		return 0, nil
	}
	if sec, usec, ok := strings.Cut(s, "."); ok && len(usec) == 6 {
		a, err1 := strconv.ParseInt(sec, 10, 64)
		b, err2 := strconv.ParseInt(usec, 10, 64)
		if err1 == nil && err2 == nil {
			return float64(a) + float64(b)/1e6, nil
		}
	}
	return strconv.ParseFloat(s, 64)
}
