package config

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// locator turns config messages into "file:line: message" by finding the
// key a message names in the YAML node tree.
type locator struct {
	name string
	root *yaml.Node // nil when the file is not valid YAML
}

func newLocator(name string, raw []byte) *locator {
	l := &locator{name: name}
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) == nil && len(doc.Content) == 1 {
		l.root = doc.Content[0]
	}
	return l
}

var (
	// "line 12: …" as config.go and the YAML library write it.
	lineMsg = regexp.MustCompile(`^line (\d+): (.*)$`)
	// A config key path at the start of a message, e.g.
	// hardware.doors.front.relay.pin, followed by a colon or the quoted
	// value.
	keyMsg = regexp.MustCompile(`^((?:hardware|salto|mqtt|cards|doors\[\d+\])(?:\.[a-z0-9_-]+|\[\d+\])*|[a-z_]+)(?::| ")`)
)

// place formats one message. Messages may carry the file name and a
// "hardware: " prefix from config.go; both are normalised.
func (l *locator) place(msg string) string {
	msg = strings.TrimPrefix(msg, l.name+": ")
	msg = strings.TrimPrefix(msg, "hardware: ")
	if m := lineMsg.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s:%s: %s", l.name, m[1], m[2])
	}
	if m := keyMsg.FindStringSubmatch(msg); m != nil {
		if line := l.line(m[1]); line > 0 {
			return fmt.Sprintf("%s:%d: %s", l.name, line, msg)
		}
	}
	return l.name + ": " + msg
}

// placeAll places every line of err's message.
func (l *locator) placeAll(err error) []string {
	var out []string
	for _, m := range strings.Split(err.Error(), "\n") {
		out = append(out, l.place(m))
	}
	return out
}

var keyPart = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)

// line finds the line of a key path such as doors[0].salto_locks or
// hardware.doors.front.relay.pin: the deepest part that exists.
func (l *locator) line(key string) int {
	n, line := l.root, 0
	for _, part := range keyPart.FindAllString(key, -1) {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch {
		case strings.HasPrefix(part, "["):
			var i int
			if _, err := fmt.Sscanf(part, "[%d]", &i); err == nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		case n.Kind == yaml.MappingNode:
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == part {
					next, line = n.Content[j+1], n.Content[j].Line
				}
			}
		}
		n = next
	}
	return line
}
