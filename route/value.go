package route

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// kind is the type of a value.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNum
	kindStr
	kindList
	kindObj
)

// value is one node of a configuration read from JSON or YAML: both
// formats are turned into values, and route handles are decoded from
// values once. Objects keep their keys in the order written.
type value struct {
	kind kind
	b    bool
	num  float64
	str  string
	list []*value
	keys []string
	vals []*value
}

// get returns the object member key, or nil.
func (v *value) get(key string) *value {
	if v == nil || v.kind != kindObj {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

// set sets the object member key, replacing one of the same name.
func (v *value) set(key string, m *value) {
	for i, k := range v.keys {
		if k == key {
			v.vals[i] = m
			return
		}
	}
	v.keys = append(v.keys, key)
	v.vals = append(v.vals, m)
}

// del removes the object member key.
func (v *value) del(key string) {
	for i, k := range v.keys {
		if k == key {
			v.keys = append(v.keys[:i:i], v.keys[i+1:]...)
			v.vals = append(v.vals[:i:i], v.vals[i+1:]...)
			return
		}
	}
}

func (v *value) isInt() bool {
	return v.kind == kindNum && v.num == math.Trunc(v.num) && math.Abs(v.num) < 1<<53
}

// what names v's type for error messages.
func (v *value) what() string {
	switch v.kind {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNum:
		return "a number"
	case kindStr:
		return "a string"
	case kindList:
		return "a list"
	}
	return "an object"
}

// equal reports whether v and w are the same tree.
func (v *value) equal(w *value) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case kindBool:
		return v.b == w.b
	case kindNum:
		return v.num == w.num
	case kindStr:
		return v.str == w.str
	case kindList:
		if len(v.list) != len(w.list) {
			return false
		}
		for i := range v.list {
			if !v.list[i].equal(w.list[i]) {
				return false
			}
		}
	case kindObj:
		if len(v.keys) != len(w.keys) {
			return false
		}
		for i, k := range v.keys {
			o := w.get(k)
			if o == nil || !v.vals[i].equal(o) {
				return false
			}
		}
	}
	return true
}

// clone returns a deep copy of v.
func (v *value) clone() *value {
	c := *v
	if v.list != nil {
		c.list = make([]*value, len(v.list))
		for i, e := range v.list {
			c.list[i] = e.clone()
		}
	}
	if v.keys != nil {
		c.keys = append([]string(nil), v.keys...)
		c.vals = make([]*value, len(v.vals))
		for i, e := range v.vals {
			c.vals[i] = e.clone()
		}
	}
	return &c
}

// text renders a scalar as a string (numbers as JSON writes them).
func (v *value) text() string {
	switch v.kind {
	case kindStr:
		return v.str
	case kindNum:
		return strconv.FormatFloat(v.num, 'g', -1, 64)
	case kindBool:
		return strconv.FormatBool(v.b)
	case kindNull:
		return "null"
	}
	return ""
}

func strValue(s string) *value { return &value{kind: kindStr, str: s} }

// fromYAML converts a YAML node into a value. Scalars take the type YAML
// resolves them to; anchors and aliases are followed (to a bounded depth,
// and at most maxSteps nodes in all, counted in *steps: aliases that
// double at each level would otherwise make a tree of billions).
func fromYAML(n *yaml.Node, depth int, steps *int) (*value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested too deeply", n.Line)
	}
	if *steps++; *steps > maxSteps {
		return nil, fmt.Errorf("line %d: aliases expand to more than %d values", n.Line, maxSteps)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &value{}, nil
		}
		return fromYAML(n.Content[0], depth+1, steps)
	case yaml.AliasNode:
		return fromYAML(n.Alias, depth+1, steps)
	case yaml.SequenceNode:
		v := &value{kind: kindList, list: []*value{}}
		for _, c := range n.Content {
			e, err := fromYAML(c, depth+1, steps)
			if err != nil {
				return nil, err
			}
			v.list = append(v.list, e)
		}
		return v, nil
	case yaml.MappingNode:
		v := &value{kind: kindObj, keys: []string{}, vals: []*value{}}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key must be a scalar", k.Line)
			}
			if v.get(k.Value) != nil {
				return nil, fmt.Errorf("line %d: key %q is given twice", k.Line, k.Value)
			}
			e, err := fromYAML(n.Content[i+1], depth+1, steps)
			if err != nil {
				return nil, err
			}
			v.keys = append(v.keys, k.Value)
			v.vals = append(v.vals, e)
		}
		return v, nil
	}
	switch n.ShortTag() {
	case "!!null":
		return &value{}, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return &value{kind: kindBool, b: b}, nil
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return &value{kind: kindNum, num: f}, nil
	}
	return strValue(n.Value), nil
}

// join appends a member or index to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	if strings.HasPrefix(key, "[") {
		return path + key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
