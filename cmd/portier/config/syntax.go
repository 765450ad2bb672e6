package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAML syntax errors as an installer should read them: the line the mistake
// is on, and what to do about it.

// yamlError is the YAML library's "yaml: line N: problem".
var yamlError = regexp.MustCompile(`^(?:yaml: )?(?:line (\d+): )?(.*)$`)

// syntaxMessage turns a YAML syntax error into "line N: problem; hint". The
// parser reports the line where the enclosing block starts (doors: for a key
// mis-indented three lines below), so the file is parsed again line by line:
// the first part of it that fails with the same problem ends on the bad line.
func syntaxMessage(raw []byte, err error) string {
	m := yamlError.FindStringSubmatch(err.Error())
	reported, _ := strconv.Atoi(m[1])
	problem := m[2]
	line := problemLine(raw, problem)
	if line == 0 {
		line = reported
	}
	lines := bytes.Split(raw, []byte("\n"))
	if tab := tabLine(lines, line); tab > 0 && (strings.Contains(problem, "tab") || strings.Contains(problem, "cannot start any token")) {
		return fmt.Sprintf("line %d: tabs are not allowed for indentation, use spaces (line %d)", tab, tab)
	}
	msg := problem
	if h := syntaxHint(problem); h != "" {
		msg += " (" + h + ")"
	}
	if line == 0 {
		return msg
	}
	return fmt.Sprintf("line %d: %s", line, msg)
}

// problemLine is the first line at which the file's beginning fails to parse
// with problem, 0 when none does.
func problemLine(raw []byte, problem string) int {
	var prefix []byte
	for i, l := range bytes.SplitAfter(raw, []byte("\n")) {
		prefix = append(prefix, l...)
		var n yaml.Node
		if err := yaml.Unmarshal(prefix, &n); err != nil {
			if m := yamlError.FindStringSubmatch(err.Error()); m[2] == problem {
				return i + 1
			}
		}
	}
	return 0
}

// tabLine is the line of a tab in indentation: line itself when its
// indentation holds one, else the first such line; 0 when there is none.
func tabLine(lines [][]byte, line int) int {
	indentTab := func(l []byte) bool {
		rest := bytes.TrimLeft(l, " \t")
		return bytes.ContainsRune(l[:len(l)-len(rest)], '\t')
	}
	if line > 0 && line <= len(lines) && indentTab(lines[line-1]) {
		return line
	}
	for i, l := range lines {
		if indentTab(l) {
			return i + 1
		}
	}
	return 0
}

// unmarshalError is the YAML library's "line N: cannot unmarshal !!tag
// `value` into type".
var unmarshalError = regexp.MustCompile("^line (\\d+): cannot unmarshal !!\\w+ (`.*`|.*?) into (.+)$")

// typeHint turns a value of the wrong type into the key it is for and what
// that key takes: "line 30: active_low: `yes please` is not true or false",
// not the library's Go type names. Other messages pass unchanged.
func typeHint(msg string, raw []byte) string {
	m := unmarshalError.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	n, _ := strconv.Atoi(m[1])
	value, goType := m[2], m[3]
	var want string
	switch {
	case goType == "bool":
		want = "is not true or false"
	case goType == "time.Duration":
		want = "is not a duration: write it like 5s, 1m30s or 200ms"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		want = "is not a whole number"
	case strings.HasPrefix(goType, "float"):
		want = "is not a number"
	case strings.HasPrefix(goType, "[]"):
		want = "is not a list: write [a, b] or one \"- item\" per line"
	case goType == "string":
		want = "is not a single value: quote it, or take the list or section away"
	default:
		want = "is not a section: write its keys on the lines below it, indented"
	}
	// The key is the word before the value on its line ("relay: {pin:
	// GPIO17, active_low: yes}" names active_low).
	key := ""
	if lines := bytes.Split(raw, []byte("\n")); n >= 1 && n <= len(lines) {
		line := string(lines[n-1])
		v := strings.TrimSuffix(strings.Trim(value, "`"), "...")
		if i := strings.Index(line, v); v != "" && i > 0 {
			line = line[:i]
		}
		line = strings.TrimRight(line, " :\t")
		if i := strings.LastIndexAny(line, " {,-\t"); i >= 0 {
			line = line[i+1:]
		}
		if line != "" {
			key = line + ": "
		}
	}
	return fmt.Sprintf("line %d: %s%s %s", n, key, value, want)
}

// syntaxHint says what usually causes a YAML problem.
func syntaxHint(problem string) string {
	switch {
	case strings.Contains(problem, "did not find expected key"),
		strings.Contains(problem, "did not find expected '-' indicator"),
		strings.Contains(problem, "could not find expected ':'"),
		strings.Contains(problem, "block sequence entries are not allowed"):
		return "check this line's indentation: the keys of one section start in the same column, list items start with \"- \" under their key"
	case strings.Contains(problem, "mapping values are not allowed"):
		return "a value holding \": \" must be quoted, e.g. name: \"Hall: front door\"; or a key is indented under a value"
	case strings.Contains(problem, "did not find expected ',' or ']'"):
		return "a [ ] list is not closed on this line, or an item in it needs quotes"
	case strings.Contains(problem, "did not find expected ',' or '}'"):
		return "a { } map is not closed on this line, or a value in it needs quotes"
	case strings.Contains(problem, "unexpected end of stream"), strings.Contains(problem, "found unknown escape"):
		return "a quoted value that starts on this line is not closed: add its closing quote"
	case strings.Contains(problem, "cannot start any token"):
		return "a value starting with @, ` or % must be quoted"
	}
	return "see the example config for the layout: key: value, two spaces per level"
}
