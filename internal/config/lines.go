package config

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Key paths are written the way a person would find them in the file:
// dotted names, quoted only where TOML needs quotes, and [i] for the i-th
// element of a list or array of tables: ollama.endpoints[1].url,
// models.options."granite4:tiny-h".num_ctx.

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// tomlKey writes one key name as TOML does: bare when it can be.
func tomlKey(name string) string {
	if bareKey.MatchString(name) {
		return name
	}
	return strconv.Quote(name)
}

// joinKey appends a name to a key path.
func joinKey(path, name string) string {
	if path == "" {
		return tomlKey(name)
	}
	return path + "." + tomlKey(name)
}

// indexKey appends a list index to a key path.
func indexKey(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// splitKey undoes joinKey and indexKey: names unquoted, indices as "[i]".
// It also reads paths whose names are quoted where TOML would not need it,
// so canonicalKey can bring them to one spelling.
func splitKey(path string) []string {
	var parts []string
	for i := 0; i < len(path); {
		switch c := path[i]; {
		case c == '.':
			i++
		case c == '[':
			j := strings.IndexByte(path[i:], ']')
			if j < 0 {
				return append(parts, path[i:])
			}
			parts = append(parts, path[i:i+j+1])
			i += j + 1
		case c == '"':
			q, err := strconv.QuotedPrefix(path[i:])
			if err != nil {
				return append(parts, path[i:])
			}
			s, _ := strconv.Unquote(q)
			parts = append(parts, s)
			i += len(q)
		default:
			j := strings.IndexAny(path[i:], ".[")
			if j < 0 {
				j = len(path) - i
			}
			parts = append(parts, path[i:i+j])
			i += j
		}
	}
	return parts
}

func isIndex(part string) bool { return strings.HasPrefix(part, "[") }

func joinParts(parts []string) string {
	var p string
	for _, part := range parts {
		if isIndex(part) {
			p += part
		} else {
			p = joinKey(p, part)
		}
	}
	return p
}

// canonicalKey spells a key path the one way keyLines records it.
func canonicalKey(path string) string { return joinParts(splitKey(path)) }

// keyLines maps each key path written in a TOML document to the line it is
// written on: keys, [tables], [[arrays of tables]] with their index, keys of
// inline tables and elements of lists. It reads the document with go-toml's
// own parser, so quoting, comments and multi-line strings and arrays are
// understood exactly as the decoder understands them.
type keyLines map[string]int

func readKeyLines(data []byte) keyLines {
	lines := keyLines{}
	var newlines []int
	for i, c := range data {
		if c == '\n' {
			newlines = append(newlines, i)
		}
	}
	lineOf := func(r unstable.Range) int {
		return sort.SearchInts(newlines, int(r.Offset)) + 1
	}
	// firstLine is where a node starts: its own bytes, or those of its
	// first descendant that has any (arrays and inline tables have none).
	var firstLine func(n *unstable.Node) int
	firstLine = func(n *unstable.Node) int {
		if n.Raw.Length > 0 {
			return lineOf(n.Raw)
		}
		it := n.Children()
		for it.Next() {
			if l := firstLine(it.Node()); l > 0 {
				return l
			}
		}
		return 0
	}
	note := func(path string, line int) {
		if _, ok := lines[path]; !ok && line > 0 {
			lines[path] = line
		}
	}
	// arrays counts the elements of each array of tables seen so far, so a
	// later header names its newest element.
	arrays := map[string]int{}
	resolve := func(base string, key unstable.Iterator, line int) string {
		p := base
		for key.Next() {
			p = joinKey(p, string(key.Node().Data))
			if n, ok := arrays[p]; ok {
				p = indexKey(p, n-1)
			}
			note(p, line)
		}
		return p
	}
	var value func(path string, n *unstable.Node, line int)
	value = func(path string, n *unstable.Node, line int) {
		switch n.Kind {
		case unstable.InlineTable:
			it := n.Children()
			for it.Next() {
				kv := it.Node()
				key := kv.Key()
				l := line
				if k := key; k.Next() {
					l = lineOf(k.Node().Raw)
				}
				p := path
				for key.Next() {
					p = joinKey(p, string(key.Node().Data))
					note(p, l)
				}
				value(p, kv.Value(), l)
			}
		case unstable.Array:
			it := n.Children()
			for i := 0; it.Next(); i++ {
				el := it.Node()
				l := firstLine(el)
				if l == 0 {
					l = line
				}
				p := indexKey(path, i)
				note(p, l)
				value(p, el, l)
			}
		}
	}

	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = resolve("", e.Key(), firstLine(e))
		case unstable.ArrayTable:
			line := firstLine(e)
			key := e.Key()
			var parts []string
			for key.Next() {
				parts = append(parts, string(key.Node().Data))
			}
			if len(parts) == 0 {
				continue
			}
			base := ""
			for _, part := range parts[:len(parts)-1] {
				base = joinKey(base, part)
				if n, ok := arrays[base]; ok {
					base = indexKey(base, n-1)
				}
				note(base, line)
			}
			list := joinKey(base, parts[len(parts)-1])
			note(list, line)
			table = indexKey(list, arrays[list])
			arrays[list]++
			note(table, line)
		case unstable.KeyValue:
			key := e.Key()
			line := 0
			if k := key; k.Next() {
				line = lineOf(k.Node().Raw)
			}
			path := table
			for key.Next() {
				path = joinKey(path, string(key.Node().Data))
				note(path, line)
			}
			value(path, e.Value(), line)
		}
	}
	// A syntax error is reported by the decoder, with its own position; the
	// lines read up to it are still right.
	return lines
}

// find returns the line a key path is written on, 0 when the file does not
// write it (its default is in use). A key missing from a list element the
// file does write (a [[tools.command]] without argv) is placed at the
// element, which is where it needs adding.
func (l keyLines) find(path string) int {
	parts := splitKey(path)
	for n := len(parts); n > 0; n-- {
		if n < len(parts) && !isIndex(parts[n-1]) {
			continue
		}
		if line, ok := l[joinParts(parts[:n])]; ok {
			return line
		}
	}
	return 0
}
