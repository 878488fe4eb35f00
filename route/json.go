package route

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a configuration's lists and objects, and
// of macro expansion.
const maxDepth = 250

// jsonParser reads JSON as mcrouter does: // and /* */ comments outside
// strings, and a comma before a closing bracket, are allowed. It never
// panics and stops at the first error, which names its line and column.
type jsonParser struct {
	data     []byte
	pos      int
	warnings []string
}

// syntaxError is a JSON error at a line and column (both from 1).
type syntaxError struct {
	line, col int
	msg       string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%d:%d: %s", e.line, e.col, e.msg) }

// parseJSON parses data into a value; warnings are keys given twice (the
// last one counts, as in mcrouter).
func parseJSON(data []byte) (*value, []string, error) {
	p := &jsonParser{data: data}
	p.space()
	if p.pos >= len(p.data) {
		return nil, nil, p.fail("empty configuration")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, nil, err
	}
	if err := p.space(); err != nil {
		return nil, nil, err
	}
	if p.pos < len(p.data) {
		return nil, nil, p.fail("unexpected %s after the end of the configuration", p.near())
	}
	return v, p.warnings, nil
}

// where returns the line and column of byte offset off.
func (p *jsonParser) where(off int) (int, int) {
	line, col := 1, 1
	for i := 0; i < off && i < len(p.data); i++ {
		if p.data[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

func (p *jsonParser) fail(format string, args ...any) error {
	return p.failAt(p.pos, format, args...)
}

func (p *jsonParser) failAt(off int, format string, args ...any) error {
	l, c := p.where(off)
	return &syntaxError{line: l, col: c, msg: fmt.Sprintf(format, args...)}
}

// near describes the byte at the current position.
func (p *jsonParser) near() string {
	if p.pos >= len(p.data) {
		return "end of input"
	}
	return strconv.QuoteRune(rune(p.data[p.pos]))
}

// space skips white space and comments.
func (p *jsonParser) space() error {
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == '/' && p.pos+1 < len(p.data) && p.data[p.pos+1] == '/':
			for p.pos < len(p.data) && p.data[p.pos] != '\n' {
				p.pos++
			}
		case c == '/' && p.pos+1 < len(p.data) && p.data[p.pos+1] == '*':
			start := p.pos
			p.pos += 2
			for {
				if p.pos+1 >= len(p.data) {
					p.pos = len(p.data)
					return p.failAt(start, "comment not closed")
				}
				if p.data[p.pos] == '*' && p.data[p.pos+1] == '/' {
					p.pos += 2
					break
				}
				p.pos++
			}
		default:
			return nil
		}
	}
	return nil
}

func (p *jsonParser) value(depth int) (*value, error) {
	if depth > maxDepth {
		return nil, p.fail("nested too deeply")
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.pos >= len(p.data) {
		return nil, p.fail("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return strValue(s), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.word("true"):
		return &value{kind: kindBool, b: true}, nil
	case p.word("false"):
		return &value{kind: kindBool}, nil
	case p.word("null"):
		return &value{}, nil
	}
	return nil, p.fail("unexpected %s", p.near())
}

// word consumes w if it is next.
func (p *jsonParser) word(w string) bool {
	if len(p.data)-p.pos >= len(w) && string(p.data[p.pos:p.pos+len(w)]) == w {
		p.pos += len(w)
		return true
	}
	return false
}

func (p *jsonParser) object(depth int) (*value, error) {
	p.pos++ // {
	v := &value{kind: kindObj, keys: []string{}, vals: []*value{}}
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return v, nil
		}
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.fail("want a key in quotes or '}', found %s", p.near())
		}
		keyAt := p.pos
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.fail("want ':' after key %q, found %s", k, p.near())
		}
		p.pos++
		m, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if v.get(k) != nil {
			l, c := p.where(keyAt)
			p.warnings = append(p.warnings, fmt.Sprintf("%d:%d: key %q is given twice; the last one counts", l, c, k))
		}
		v.set(k, m)
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return v, nil
		}
		return nil, p.fail("want ',' or '}', found %s", p.near())
	}
}

func (p *jsonParser) array(depth int) (*value, error) {
	p.pos++ // [
	v := &value{kind: kindList, list: []*value{}}
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		e, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.list = append(v.list, e)
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		return nil, p.fail("want ',' or ']', found %s", p.near())
	}
}

func (p *jsonParser) string() (string, error) {
	start := p.pos
	p.pos++ // "
	var b []byte
	for {
		if p.pos >= len(p.data) {
			return "", p.failAt(start, "string not closed")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(b), nil
		case c < 0x20:
			return "", p.fail("control character %#x in a string", c)
		case c == '\\':
			if p.pos+1 >= len(p.data) {
				return "", p.failAt(start, "string not closed")
			}
			e := p.data[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.fail("bad \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := utf8.RuneError
					save := p.pos
					if p.word("\\u") {
						if lo, ok := p.hex4(); ok {
							r2 = utf16.DecodeRune(r, lo)
						}
					}
					if r2 == utf8.RuneError {
						p.pos = save
					}
					r = r2
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", p.failAt(p.pos-2, "bad escape \\%c", e)
			}
		default:
			b = append(b, c)
			p.pos++
		}
	}
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(n), true
}

func (p *jsonParser) number() (*value, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.data[p.pos] == '-' {
		p.pos++
	}
	if digits() == 0 {
		return nil, p.failAt(start, "bad number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.failAt(start, "bad number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.failAt(start, "bad number")
		}
	}
	f, err := strconv.ParseFloat(string(p.data[start:p.pos]), 64)
	if err != nil {
		return nil, p.failAt(start, "number %s is out of range", p.data[start:p.pos])
	}
	return &value{kind: kindNum, num: f}, nil
}
