package store

// entry is a queued or open item, its position in the order of adds, and
// the lsn of its add record if that may still be pending (else noLSN).
type entry struct {
	it  Item
	seq uint64
	lsn uint64
}

const noLSN = ^uint64(0)

// deque is a ring buffer of entries: push at either end, pop at the head.
// It is plain data; Queue locks around it.
type deque struct {
	buf  []entry
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) grow() {
	c := 2 * len(d.buf)
	if c == 0 {
		c = 16
	}
	nb := make([]entry, c)
	for i := 0; i < d.n; i++ {
		nb[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = nb, 0
}

func (d *deque) pushBack(e entry) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)%len(d.buf)] = e
	d.n++
}

func (d *deque) pushFront(e entry) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = e
	d.n++
}

// front returns the head; the deque must not be empty.
func (d *deque) front() *entry { return &d.buf[d.head] }

// at returns the i'th entry from the head.
func (d *deque) at(i int) *entry { return &d.buf[(d.head+i)%len(d.buf)] }

func (d *deque) popFront() entry {
	e := d.buf[d.head]
	d.buf[d.head] = entry{}
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	if d.n == 0 {
		d.head = 0
		if len(d.buf) > 1024 {
			// A queue that drained gives back the ring a burst grew.
			d.buf = nil
		}
	}
	return e
}

func (d *deque) clear() { *d = deque{} }
