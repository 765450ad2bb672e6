package agent_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// eventTypeLiterals returns the string literals a file gives the type
// EventType (or agent.EventType): constants, variables and conversions.
func eventTypeLiterals(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	require.NoError(t, err)
	isEventType := func(e ast.Expr) bool {
		switch e := e.(type) {
		case *ast.Ident:
			return e.Name == "EventType"
		case *ast.SelectorExpr:
			return e.Sel.Name == "EventType"
		}
		return false
	}
	out := map[string]string{} // value → name (or "conversion")
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ValueSpec:
			if n.Type == nil || !isEventType(n.Type) {
				return true
			}
			for i, v := range n.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out[s] = n.Names[i].Name
				}
			}
		case *ast.CallExpr:
			if isEventType(n.Fun) && len(n.Args) == 1 {
				if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out[s] = "conversion"
				}
			}
		}
		return true
	})
	return out
}

// TestEventTypesInOnePlace: eventtypes.go declares every event type, each is
// in EventTypes once, and no other file of the module makes up another.
func TestEventTypesInOnePlace(t *testing.T) {
	declared := eventTypeLiterals(t, "eventtypes.go")
	listed := map[string]int{}
	for _, typ := range agent.EventTypes {
		listed[string(typ)]++
	}
	for v, name := range declared {
		assert.Equal(t, 1, listed[v], "%s (%q) must be in EventTypes exactly once", name, v)
	}
	assert.Len(t, listed, len(declared), "EventTypes holds a type eventtypes.go does not declare")

	root, err := filepath.Abs("..")
	require.NoError(t, err)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == filepath.Join(root, "agent", "eventtypes.go") {
			return nil
		}
		for v, name := range eventTypeLiterals(t, path) {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s declares event type %q (%s): add it to agent/eventtypes.go instead", rel, v, name)
		}
		return nil
	})
	require.NoError(t, err)
}

// TestEventTypesDocumented: every event type is described in
// docs/door-runtime.md or docs/mqtt.md.
func TestEventTypesDocumented(t *testing.T) {
	var docs strings.Builder
	for _, name := range []string{"door-runtime.md", "mqtt.md"} {
		b, err := os.ReadFile(filepath.Join("..", "docs", name))
		require.NoError(t, err)
		docs.Write(b)
	}
	for _, typ := range agent.EventTypes {
		assert.True(t, strings.Contains(docs.String(), "`"+string(typ)+"`"), "event type %s is not documented", typ)
	}
}
