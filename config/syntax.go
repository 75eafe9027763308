package config

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// This file holds the YAML layer: it turns the file into one yaml.Node
// tree and rejects the YAML features nutcracker's token scan rejects.
// yaml.v3 keeps anchors, aliases, explicit tags and flow style on the
// nodes, but not document markers, directives or the non-specific tag "!",
// so those are found in the text, at the positions yaml.v3 reports.

// source is the file as UTF-8 without a byte order mark, split into lines
// the way yaml.v3 counts them.
type source struct {
	text  []byte
	lines []int // byte offset of the start of each line
}

func newSource(text []byte) *source {
	s := &source{text: text, lines: []int{0}}
	for i := 0; i < len(text); {
		if n := lineBreak(text[i:]); n > 0 {
			i += n
			s.lines = append(s.lines, i)
			continue
		}
		i++
	}
	return s
}

// lineBreak returns the length of the line break at the start of b, or 0.
// Like yaml.v3 (and libyaml) it knows CR LF, CR, LF, NEL, LS and PS.
func lineBreak(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == '\r' && len(b) > 1 && b[1] == '\n':
		return 2
	case b[0] == '\r', b[0] == '\n':
		return 1
	case bytes.HasPrefix(b, []byte("\u0085")):
		return 2
	case bytes.HasPrefix(b, []byte("\u2028")), bytes.HasPrefix(b, []byte("\u2029")):
		return 3
	}
	return 0
}

// line returns the text of the 1-based line n without its line break.
func (s *source) line(n int) []byte {
	if n < 1 || n > len(s.lines) {
		return nil
	}
	start, end := s.lines[n-1], len(s.text)
	if n < len(s.lines) {
		end = s.lines[n]
	}
	l := s.text[start:end]
	for len(l) > 0 {
		c := l[len(l)-1]
		if c == '\n' || c == '\r' {
			l = l[:len(l)-1]
			continue
		}
		if r, size := utf8.DecodeLastRune(l); r == '\u0085' || r == '\u2028' || r == '\u2029' {
			l = l[:len(l)-size]
			continue
		}
		break
	}
	return l
}

// at returns the character at a yaml.v3 position: 1-based line, and
// 1-based column counted in characters.
func (s *source) at(line, column int) (rune, bool) {
	l := s.line(line)
	for i := 1; len(l) > 0; i++ {
		r, size := utf8.DecodeRune(l)
		if i == column {
			return r, true
		}
		l = l[size:]
	}
	return 0, false
}

// lineOf returns the 1-based line holding byte offset off.
func (s *source) lineOf(off int) int {
	n := 1
	for n < len(s.lines) && s.lines[n] <= off {
		n++
	}
	return n
}

// document decodes data into the root node of its only document, rejecting
// what nutcracker rejects before it looks at pools and keys.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	text, err := p.toUTF8(data)
	if err != nil {
		return nil, err
	}
	p.src = newSource(text)
	docs, err := p.decode(text)
	if err != nil {
		return nil, err
	}
	switch {
	case len(docs) == 0:
		return nil, p.errorf(0, "", "", "the file holds no YAML document; it must hold one mapping from pool names to pools")
	case len(docs) > 1:
		return nil, p.errorf(docs[1].Line, "", "", "the file holds %d YAML documents; it must hold exactly one", len(docs))
	}
	if err := p.markers(); err != nil {
		return nil, err
	}
	doc := docs[0]
	if len(doc.Content) != 1 {
		return nil, p.errorf(doc.Line, "", "", "the YAML document has no content")
	}
	if err := p.properties(doc.Content[0], "", "", 0); err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

// toUTF8 returns data as UTF-8 without a byte order mark. libyaml, and so
// nutcracker, also reads UTF-16 that starts with a byte order mark.
func (p *parser) toUTF8(data []byte) ([]byte, error) {
	if b, ok := bytes.CutPrefix(data, []byte("\xEF\xBB\xBF")); ok {
		return b, nil
	}
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		order = binary.LittleEndian
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		order = binary.BigEndian
	default:
		return data, nil
	}
	data = data[2:]
	units := make([]uint16, len(data)/2)
	line := 1
	for i := range units {
		units[i] = order.Uint16(data[2*i:])
		if units[i] == '\n' {
			line++
		}
	}
	if len(data)%2 != 0 {
		return nil, p.errorf(line, "", "", "the file is UTF-16 but ends in the middle of a character")
	}
	line = 1
	for i := 0; i < len(units); i++ {
		u := units[i]
		switch {
		case u == '\n':
			line++
		case utf16.IsSurrogate(rune(u)) && u < 0xDC00 && i+1 < len(units) && units[i+1] >= 0xDC00 && units[i+1] < 0xE000:
			i++ // a valid pair
		case utf16.IsSurrogate(rune(u)):
			return nil, p.errorf(line, "", "", "the file is UTF-16 but holds an unpaired surrogate (0x%04X)", u)
		}
	}
	return []byte(string(utf16.Decode(units))), nil
}

// decode returns the documents of text.
func (p *parser) decode(text []byte) (docs []*yaml.Node, err error) {
	// yaml.v3 reports errors by panicking internally and recovering; a
	// panic that escapes it is a bug there, turned into a rejection here
	// rather than crashing the caller.
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, p.errorf(1, "", "", "the YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(text))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, p.syntaxError(err)
		}
		docs = append(docs, &doc)
	}
}

// parserProblems are the problems yaml.v3's parser (as opposed to its
// scanner) reports. For these it gives the 0-based line of the construct
// being parsed (or of the problem when that construct starts on the first
// line), and no line at all for 0.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxError turns a yaml.v3 error, "yaml: line N: what" or "yaml: what",
// into an *Error at its line.
func (p *parser) syntaxError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, what, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				line, msg = n, what
			}
		}
	}
	if parserProblems[msg] {
		line++ // 0-based, and absent for 0
		last := len(p.src.lines)
		if last > 1 && len(p.src.line(last)) == 0 {
			last-- // the empty "line" after the final line break
		}
		line = min(line, last)
	}
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok && line == 0 {
		// An alias of an anchor that does not exist: yaml.v3 gives no
		// line, but aliases are rejected anyway.
		name = strings.TrimSuffix(name, "' referenced")
		if i := bytes.Index(p.src.text, []byte("*"+name)); i >= 0 {
			return p.errorf(p.src.lineOf(i), "", "", "YAML aliases (%q) are not allowed (and no anchor %q is defined)", "*"+name, name)
		}
	}
	if line == 0 {
		line = p.badCharLine()
	}
	return p.errorf(line, "", "", "invalid YAML: %s", msg)
}

// badCharLine returns the line of the first byte yaml.v3 refuses to read
// (invalid UTF-8 or a control character), or 1 if there is none.
func (p *parser) badCharLine() int {
	text := p.src.text
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		if (r == utf8.RuneError && size == 1) || !yamlPrintable(r) {
			return p.src.lineOf(i)
		}
		i += size
	}
	return 1
}

// yamlPrintable reports whether YAML allows r in a stream.
func yamlPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7E) || r == 0x85 ||
		(r >= 0xA0 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// markers rejects document markers and directives, which yaml.v3 does not
// record on the nodes. At column 0, "---" or "..." followed by a blank or
// the end of the line is always a document marker: it ends a plain scalar
// and is an error inside a quoted one, and block scalars in a valid file
// are indented. A '%' at column 0 before any content is a directive.
func (p *parser) markers() *Error {
	content := false
	for n := 1; n <= len(p.src.lines); n++ {
		l := p.src.line(n)
		for _, m := range []string{"---", "..."} {
			if bytes.HasPrefix(l, []byte(m)) && (len(l) == 3 || l[3] == ' ' || l[3] == '\t') {
				return p.errorf(n, "", "", "explicit YAML document markers (%q) are not allowed", m)
			}
		}
		if !content && len(l) > 0 && l[0] == '%' {
			return p.errorf(n, "", "", "YAML directives (%q) are not allowed", strings.Fields(string(l))[0])
		}
		if t := bytes.TrimLeft(l, " \t"); len(t) > 0 && t[0] != '#' {
			content = true
		}
	}
	return nil
}

// properties rejects, in n and below, the YAML features nutcracker's token
// scan rejects: anchors, aliases, tags and flow collections. pool and key
// name where n is, for the message; depth is 0 for the root, 1 for a pool,
// 2 for a key's value.
func (p *parser) properties(n *yaml.Node, pool, key string, depth int) *Error {
	// The node starts at its properties, if any, so the character there
	// shows the "!" tag yaml.v3 drops. A block mapping starts where its
	// first key does, so a property there belongs to the key.
	var r rune
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 || n.Content[0].Line != n.Line || n.Content[0].Column != n.Column {
		r, _ = p.src.at(n.Line, n.Column)
	}
	switch {
	case n.Kind == yaml.AliasNode:
		return p.errorf(n.Line, pool, key, "YAML aliases (%q) are not allowed", "*"+n.Value)
	case n.Anchor != "" || r == '&':
		return p.errorf(n.Line, pool, key, "YAML anchors (%q) are not allowed", "&"+n.Anchor)
	case n.Style&yaml.TaggedStyle != 0 || r == '!':
		return p.errorf(n.Line, pool, key, "YAML tags (such as %q or %q) are not allowed", "!!str", "!")
	case n.Style&yaml.FlowStyle != 0 && n.Kind == yaml.SequenceNode:
		return p.errorf(n.Line, pool, key, `flow sequences ("[a, b]") are not allowed: write one "- item" per line`)
	case n.Style&yaml.FlowStyle != 0 && n.Kind == yaml.MappingNode:
		return p.errorf(n.Line, pool, key, `flow mappings ("{a: b}") are not allowed: write one "key: value" per line`)
	}
	if n.Kind != yaml.MappingNode {
		for _, c := range n.Content {
			if err := p.properties(c, pool, key, depth); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		cpool, ckey := pool, key
		switch depth {
		case 0:
			cpool = k.Value
		case 1:
			ckey = k.Value
		}
		if err := p.properties(k, cpool, ckey, depth+1); err != nil {
			return err
		}
		if err := p.properties(v, cpool, ckey, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// describe names the kind of a node for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Value == "" {
			return "nothing"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}
