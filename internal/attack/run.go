package attack

import (
	"strconv"
	"time"
)

// Result is what one attack cost the server.
type Result struct {
	Attack string
	// PeakRSS is the server's largest RSS while the attack ran, in bytes.
	PeakRSS int64
	// Requests is the number of the prober's requests answered meanwhile,
	// P99 and Worst their latencies.
	Requests   int
	P99, Worst time.Duration
	// SendTimeouts and SendErrors are the Swarm's counts.
	SendTimeouts, SendErrors int
	// Connections is the server's curr_connections once it accepted
	// the attack's, for an attack with Accepted set.
	Connections int
}

// Run launches a on addr and holds it while s samples the server's RSS and
// p gets items: for at least hold, and then until the RSS has grown by
// less than 1 MB over the last hold (the server has done what the attack
// makes it do) and, if a.Accepted, the server counts all a's connections,
// or the RSS passed s's limit, or 20 times hold passed.
// Then it closes the attack and reports. An error is returned when the
// attack cannot be launched, the RSS cannot be read, or the prober failed
// (a wrong answer, or the server closing or not answering it).
func Run(addr string, a Attack, s *Sampler, p *Prober, hold time.Duration) (Result, error) {
	r := Result{Attack: a.Name}
	p.Take()
	s.Reset()
	sw, err := Launch(addr, a)
	if err != nil {
		return r, err
	}
	start := time.Now()
	last, _ := s.Peak() // the peak one hold ago
	for lastAt := start; ; time.Sleep(hold / 8) {
		peak, err := s.Peak()
		if err != nil || s.Over() || time.Since(start) > 20*hold {
			break
		}
		if a.Accepted && r.Connections < a.Conns {
			r.Connections = connections(addr)
			continue
		}
		if time.Since(lastAt) >= hold {
			if peak-last < 1<<20 {
				break
			}
			last, lastAt = peak, time.Now()
		}
	}
	r.PeakRSS, err = s.Peak()
	r.SendTimeouts, r.SendErrors = sw.SendTimeouts, sw.SendErrors
	sw.Close()
	if err != nil {
		return r, err
	}
	var perr error
	r.Requests, r.P99, r.Worst, perr = p.Take()
	return r, perr
}

// connections returns the server's curr_connections, or 0.
func connections(addr string) int {
	st, err := Stats(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(st["curr_connections"])
	return n
}
