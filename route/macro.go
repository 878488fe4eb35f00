package route

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
)

// preprocessor expands mcrouter's macros the way mcrouter's config
// preprocessor does for the common cases: "macros" defines macroDef and
// constDef entries; a string "@name(arg, ...)" or an object
// {"type": "name", param: ...} calls a macro; "%param%" in a string is a
// parameter of the macro being expanded or a const; and the built-in
// macros import, int, str, bool, merge, select and if. Expansion depth is
// bounded, so a macro that calls itself is refused instead of looping.
type preprocessor struct {
	macros    map[string]*macro
	consts    map[string]*value // raw; expanded when first used
	expanded  map[string]*value
	busy      map[string]bool // consts being expanded
	depth     int
	steps     int // values expanded, bounded by maxSteps
	size      int // bytes and members substitution and merge made, bounded by maxExpandSize
	readFile  func(string) ([]byte, error)
	dir       string // where @import paths are relative to
	imports   map[string]*value
	importing map[string]bool
	warnings  []string
}

// maxSteps bounds the work of expanding macros, whose results may double
// at each level.
const maxSteps = 1 << 18

// maxExpandSize bounds what substitutions and merges produce in all (a
// string's bytes, 16 per member of a list or an object): a const used twice
// in the next one doubles at each level, without more values expanded.
const maxExpandSize = 1 << 24

// grow counts n bytes made by expansion against maxExpandSize.
func (pp *preprocessor) grow(n int, path string) error {
	if pp.size += n; pp.size > maxExpandSize {
		return failf(path, "macros expand to more than %d bytes", maxExpandSize)
	}
	return nil
}

type param struct {
	name     string
	def      *value
	required bool
}

type macro struct {
	name   string
	params []param
	body   *value // macroDef's result
	// builtin computes a built-in macro; raw ones get their arguments
	// unexpanded, to expand in the caller's scope as they need them.
	builtin func(pp *preprocessor, args, scope map[string]*value, path string) (*value, error)
	raw     bool
}

func newPreprocessor(readFile func(string) ([]byte, error), dir string) *preprocessor {
	pp := &preprocessor{
		macros: map[string]*macro{}, consts: map[string]*value{}, expanded: map[string]*value{},
		busy: map[string]bool{}, readFile: readFile, dir: dir,
		imports: map[string]*value{}, importing: map[string]bool{},
	}
	req := func(names ...string) []param {
		ps := make([]param, len(names))
		for i, n := range names {
			ps[i] = param{name: n, required: true}
		}
		return ps
	}
	opt := func(ps []param, name string) []param { return append(ps, param{name: name}) }
	pp.macros["import"] = &macro{name: "import", params: opt(req("path"), "default"), builtin: builtinImport, raw: true}
	pp.macros["int"] = &macro{name: "int", params: req("value"), builtin: builtinInt}
	pp.macros["str"] = &macro{name: "str", params: req("value"), builtin: builtinStr}
	pp.macros["bool"] = &macro{name: "bool", params: req("value"), builtin: builtinBool}
	pp.macros["merge"] = &macro{name: "merge", params: req("params"), builtin: builtinMerge}
	pp.macros["select"] = &macro{name: "select", params: opt(req("dictionary", "key"), "default"), builtin: builtinSelect, raw: true}
	pp.macros["if"] = &macro{name: "if", params: req("condition", "is_true", "is_false"), builtin: builtinIf, raw: true}
	return pp
}

func failf(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", path, msg)
}

// define reads the "macros" section: an object of definitions, or a list
// of such objects.
func (pp *preprocessor) define(v *value, path string) error {
	v, err := pp.expand(v, nil, path)
	if err != nil {
		return err
	}
	switch v.kind {
	case kindList:
		for i, e := range v.list {
			if err := pp.define(e, index(path, i)); err != nil {
				return err
			}
		}
		return nil
	case kindObj:
	default:
		return failf(path, "want an object of macro definitions, not %s", v.what())
	}
	for i, name := range v.keys {
		d, p := v.vals[i], join(path, name)
		if d.kind != kindObj {
			return failf(p, "want a macro definition object, not %s", d.what())
		}
		typ := d.get("type")
		res := d.get("result")
		if typ == nil || typ.kind != kindStr {
			return failf(p, "want \"type\": \"macroDef\" or \"constDef\"")
		}
		if res == nil {
			return failf(p, "no \"result\"")
		}
		switch typ.str {
		case "constDef":
			pp.consts[name] = res
			delete(pp.expanded, name)
		case "macroDef":
			m := &macro{name: name, body: res}
			if ps := d.get("params"); ps != nil {
				if ps.kind != kindList {
					return failf(join(p, "params"), "want a list, not %s", ps.what())
				}
				optional := false
				for j, e := range ps.list {
					pr, err := macroParam(e, index(join(p, "params"), j))
					if err != nil {
						return err
					}
					if optional && pr.required {
						return failf(index(join(p, "params"), j), "a required parameter follows an optional one")
					}
					optional = optional || !pr.required
					m.params = append(m.params, pr)
				}
			}
			pp.macros[name] = m
		default:
			return failf(p, "unknown macro definition type %q", typ.str)
		}
	}
	return nil
}

func macroParam(e *value, path string) (param, error) {
	switch e.kind {
	case kindStr:
		return param{name: e.str, required: true}, nil
	case kindObj:
		n := e.get("name")
		if n == nil || n.kind != kindStr {
			return param{}, failf(path, "a parameter object needs a \"name\"")
		}
		pr := param{name: n.str, required: true}
		if o := e.get("optional"); o != nil {
			if o.kind != kindBool {
				return param{}, failf(path, "\"optional\" is not a boolean")
			}
			pr.required = !o.b
		}
		if d := e.get("default"); d != nil {
			pr.def, pr.required = d, false
		}
		return pr, nil
	}
	return param{}, failf(path, "a parameter is a name or an object, not %s", e.what())
}

// expand returns v with its macros expanded; scope holds the parameters
// of the macro being expanded.
func (pp *preprocessor) expand(v *value, scope map[string]*value, path string) (*value, error) {
	pp.depth++
	defer func() { pp.depth-- }()
	if pp.depth > maxDepth {
		return nil, failf(path, "macros nested more than %d deep (a macro that calls itself?)", maxDepth)
	}
	if pp.steps++; pp.steps > maxSteps {
		return nil, failf(path, "macros expand to more than %d values", maxSteps)
	}
	switch v.kind {
	case kindStr:
		return pp.expandString(v.str, scope, path)
	case kindList:
		out := &value{kind: kindList, list: make([]*value, 0, len(v.list))}
		for i, e := range v.list {
			x, err := pp.expand(e, scope, index(path, i))
			if err != nil {
				return nil, err
			}
			out.list = append(out.list, x)
		}
		return out, nil
	case kindObj:
		if t := v.get("type"); t != nil {
			tv, err := pp.expand(t, scope, join(path, "type"))
			if err != nil {
				return nil, err
			}
			if tv.kind == kindStr {
				if tv.str == "macroDef" || tv.str == "constDef" {
					return v, nil
				}
				if m := pp.macros[tv.str]; m != nil {
					return pp.callObject(m, v, scope, path)
				}
			}
		}
		out := &value{kind: kindObj, keys: make([]string, 0, len(v.keys)), vals: make([]*value, 0, len(v.vals))}
		for i, k := range v.keys {
			kv, err := pp.expandString(k, scope, path)
			if err != nil {
				return nil, err
			}
			if kv.kind != kindStr {
				return nil, failf(path, "key %q expands to %s, not a string", k, kv.what())
			}
			x, err := pp.expand(v.vals[i], scope, join(path, kv.str))
			if err != nil {
				return nil, err
			}
			out.set(kv.str, x)
		}
		return out, nil
	}
	return v, nil
}

// expandString expands a string: a macro call when it starts with '@',
// else its %param% substitutions.
func (pp *preprocessor) expandString(s string, scope map[string]*value, path string) (*value, error) {
	if !strings.HasPrefix(s, "@") {
		return pp.substitute(s, scope, path)
	}
	name, args := s[1:], []string(nil)
	if open := findUnescaped(s, '('); open >= 0 {
		if !strings.HasSuffix(s, ")") {
			return nil, failf(path, "no closing bracket in macro call %q", s)
		}
		name = s[1:open]
		var err error
		if args, err = callArgs(s[open+1:len(s)-1], path); err != nil {
			return nil, err
		}
	}
	nv, err := pp.substitute(name, scope, path)
	if err != nil {
		return nil, err
	}
	if nv.kind != kindStr {
		return nil, failf(path, "macro name in %q is not a string", s)
	}
	m := pp.macros[nv.str]
	if m == nil {
		return nil, failf(path, "unknown macro %q", nv.str)
	}
	if len(args) > len(m.params) {
		return nil, failf(path, "macro %q takes at most %d arguments, %d given", m.name, len(m.params), len(args))
	}
	bound := map[string]*value{}
	for i, a := range args {
		if m.raw {
			bound[m.params[i].name] = strValue(a)
			continue
		}
		x, err := pp.expandString(a, scope, path)
		if err != nil {
			return nil, err
		}
		bound[m.params[i].name] = x
	}
	return pp.call(m, bound, scope, path)
}

// callObject calls m with the members of v as its arguments.
func (pp *preprocessor) callObject(m *macro, v *value, scope map[string]*value, path string) (*value, error) {
	bound := map[string]*value{}
	for _, pr := range m.params {
		a := v.get(pr.name)
		if a == nil {
			continue
		}
		if !m.raw {
			var err error
			if a, err = pp.expand(a, scope, join(path, pr.name)); err != nil {
				return nil, err
			}
		}
		bound[pr.name] = a
	}
	return pp.call(m, bound, scope, path)
}

func (pp *preprocessor) call(m *macro, bound, scope map[string]*value, path string) (*value, error) {
	for _, pr := range m.params {
		if bound[pr.name] != nil {
			continue
		}
		if pr.required {
			return nil, failf(path, "macro %q: parameter %q is missing", m.name, pr.name)
		}
		if pr.def != nil {
			d, err := pp.expand(pr.def, nil, path)
			if err != nil {
				return nil, err
			}
			bound[pr.name] = d
		}
	}
	if m.builtin != nil {
		return m.builtin(pp, bound, scope, path)
	}
	return pp.expand(m.body, bound, path)
}

// substitute replaces %name% in s with parameters or consts and removes
// backslash escapes. A string that is one %name% becomes that value,
// whatever its type.
func (pp *preprocessor) substitute(s string, scope map[string]*value, path string) (*value, error) {
	if !strings.ContainsAny(s, "%\\") {
		return strValue(s), nil
	}
	var buf strings.Builder
	for s != "" {
		i := unescapeUntil(s, &buf, '%')
		if i < 0 {
			break
		}
		s = s[i+1:]
		var name strings.Builder
		j := unescapeUntil(s, &name, '%')
		if j < 0 {
			return nil, failf(path, "odd number of '%%' signs in a string")
		}
		sub, err := pp.lookup(name.String(), scope, path)
		if err != nil {
			return nil, err
		}
		if buf.Len() == 0 && j == len(s)-1 {
			return sub, nil
		}
		if sub.kind != kindStr {
			return nil, failf(path, "%%%s%% is %s, not a string", name.String(), sub.what())
		}
		if err := pp.grow(len(sub.str), path); err != nil {
			return nil, err
		}
		buf.WriteString(sub.str)
		s = s[j+1:]
	}
	return strValue(buf.String()), nil
}

func (pp *preprocessor) lookup(name string, scope map[string]*value, path string) (*value, error) {
	if v, ok := scope[name]; ok {
		return v, nil
	}
	if v, ok := pp.expanded[name]; ok {
		return v, nil
	}
	raw, ok := pp.consts[name]
	if !ok {
		return nil, failf(path, "unknown parameter %%%s%%", name)
	}
	if pp.busy[name] {
		return nil, failf(path, "const %q refers to itself", name)
	}
	pp.busy[name] = true
	defer delete(pp.busy, name)
	v, err := pp.expand(raw, nil, path)
	if err != nil {
		return nil, err
	}
	pp.expanded[name] = v
	return v, nil
}

func findUnescaped(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == c {
			return i
		}
	}
	return -1
}

// unescapeUntil copies s into b up to the first unescaped c, whose index
// it returns (-1 when there is none).
func unescapeUntil(s string, b *strings.Builder, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 == len(s) {
				return -1
			}
			i++
			b.WriteByte(s[i])
			continue
		}
		if s[i] == c {
			return i
		}
		b.WriteByte(s[i])
	}
	return -1
}

// callArgs splits the arguments of "@name(a, b(c, d), e)" at the commas
// outside brackets, trimming spaces.
func callArgs(s, path string) ([]string, error) {
	var args []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return nil, failf(path, "brackets do not match in %q", s)
			}
		case ',':
			if depth == 0 {
				args = append(args, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, failf(path, "brackets do not match in %q", s)
	}
	return append(args, strings.TrimSpace(s[start:])), nil
}

func builtinImport(pp *preprocessor, args, scope map[string]*value, path string) (*value, error) {
	pv, err := pp.expand(args["path"], scope, path)
	if err != nil {
		return nil, err
	}
	if pv.kind != kindStr {
		return nil, failf(path, "@import: the path is %s, not a string", pv.what())
	}
	name := pv.str
	if !filepath.IsAbs(name) {
		name = filepath.Join(pp.dir, name)
	}
	if v, ok := pp.imports[name]; ok {
		return v, nil
	}
	v, err := pp.importFile(name, path)
	if err != nil {
		if d := args["default"]; d != nil {
			return pp.expand(d, scope, path)
		}
		return nil, err
	}
	pp.imports[name] = v
	return v, nil
}

func (pp *preprocessor) importFile(name, path string) (*value, error) {
	if pp.importing[name] {
		return nil, failf(path, "@import(%s) imports itself", name)
	}
	if pp.readFile == nil {
		return nil, failf(path, "@import(%s): imports are not allowed here", name)
	}
	b, err := pp.readFile(name)
	if err != nil {
		return nil, failf(path, "@import: %v", err)
	}
	v, warnings, err := parseJSON(b)
	if err != nil {
		return nil, failf(path, "@import: %s:%v", name, err)
	}
	for _, w := range warnings {
		pp.warnings = append(pp.warnings, name+":"+w)
	}
	pp.importing[name] = true
	defer delete(pp.importing, name)
	return pp.expand(v, nil, path)
}

func builtinInt(_ *preprocessor, args, _ map[string]*value, path string) (*value, error) {
	v := args["value"]
	switch v.kind {
	case kindNum:
		return &value{kind: kindNum, num: math.Trunc(v.num)}, nil
	case kindStr:
		n, err := strconv.ParseInt(strings.TrimSpace(v.str), 10, 64)
		if err != nil {
			return nil, failf(path, "@int: %q is not an integer", v.str)
		}
		return &value{kind: kindNum, num: float64(n)}, nil
	case kindBool:
		if v.b {
			return &value{kind: kindNum, num: 1}, nil
		}
		return &value{kind: kindNum}, nil
	}
	return nil, failf(path, "@int: cannot convert %s", v.what())
}

func builtinStr(_ *preprocessor, args, _ map[string]*value, path string) (*value, error) {
	v := args["value"]
	if v.kind == kindList || v.kind == kindObj {
		return nil, failf(path, "@str: cannot convert %s", v.what())
	}
	return strValue(v.text()), nil
}

func builtinBool(_ *preprocessor, args, _ map[string]*value, path string) (*value, error) {
	v := args["value"]
	switch {
	case v.kind == kindBool:
		return v, nil
	case v.kind == kindStr && (v.str == "true" || v.str == "false"):
		return &value{kind: kindBool, b: v.str == "true"}, nil
	case v.kind == kindNum:
		return &value{kind: kindBool, b: v.num != 0}, nil
	}
	return nil, failf(path, "@bool: cannot convert %s", v.what())
}

func builtinMerge(pp *preprocessor, args, _ map[string]*value, path string) (*value, error) {
	ps := args["params"]
	if ps.kind != kindList || len(ps.list) == 0 {
		return nil, failf(path, "merge: \"params\" must be a list that is not empty")
	}
	for _, p := range ps.list {
		// a member costs its pointer and its place
		if err := pp.grow(len(p.str)+16*(len(p.list)+len(p.keys)), path); err != nil {
			return nil, err
		}
	}
	first := ps.list[0]
	switch first.kind {
	case kindList:
		out := &value{kind: kindList, list: []*value{}}
		for i, p := range ps.list {
			if p.kind != kindList {
				return nil, failf(path, "merge: param %d is not a list", i)
			}
			out.list = append(out.list, p.list...)
		}
		return out, nil
	case kindObj:
		out := &value{kind: kindObj, keys: []string{}, vals: []*value{}}
		for i, p := range ps.list {
			if p.kind != kindObj {
				return nil, failf(path, "merge: param %d is not an object", i)
			}
			for j, k := range p.keys {
				out.set(k, p.vals[j])
			}
		}
		return out, nil
	case kindStr:
		var b strings.Builder
		for i, p := range ps.list {
			if p.kind != kindStr {
				return nil, failf(path, "merge: param %d is not a string", i)
			}
			b.WriteString(p.str)
		}
		return strValue(b.String()), nil
	}
	return nil, failf(path, "merge: cannot merge %s", first.what())
}

func builtinSelect(pp *preprocessor, args, scope map[string]*value, path string) (*value, error) {
	dict, err := pp.expand(args["dictionary"], scope, path)
	if err != nil {
		return nil, err
	}
	key, err := pp.expand(args["key"], scope, path)
	if err != nil {
		return nil, err
	}
	var found *value
	switch {
	case dict.kind == kindObj && key.kind == kindStr:
		found = dict.get(key.str)
	case dict.kind == kindList && key.isInt():
		if i := int(key.num); i >= 0 && i < len(dict.list) {
			found = dict.list[i]
		}
	case dict.kind == kindList && key.kind == kindStr:
		if i, err := strconv.Atoi(key.str); err == nil && i >= 0 && i < len(dict.list) {
			found = dict.list[i]
		}
	default:
		return nil, failf(path, "select: cannot select %s from %s", key.what(), dict.what())
	}
	if found != nil {
		return found, nil
	}
	if d := args["default"]; d != nil {
		return pp.expand(d, scope, path)
	}
	return nil, failf(path, "select: %q not found", key.text())
}

func builtinIf(pp *preprocessor, args, scope map[string]*value, path string) (*value, error) {
	c, err := pp.expand(args["condition"], scope, path)
	if err != nil {
		return nil, err
	}
	if c.kind != kindBool {
		return nil, failf(path, "if: the condition is %s, not a boolean", c.what())
	}
	if c.b {
		return pp.expand(args["is_true"], scope, path)
	}
	return pp.expand(args["is_false"], scope, path)
}
