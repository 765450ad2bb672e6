package mqtt

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/agent"
)

// TestTopicsDocumented: every topic in TopicTable is built by the code as
// documented, and appears in docs/mqtt.md and as a channel of
// docs/asyncapi.yaml; so do every command, category and error type.
func TestTopicsDocumented(t *testing.T) {
	md, err := os.ReadFile("../../docs/mqtt.md")
	require.NoError(t, err)
	raw, err := os.ReadFile("../../docs/asyncapi.yaml")
	require.NoError(t, err)
	var api struct {
		AsyncAPI string         `yaml:"asyncapi"`
		Channels map[string]any `yaml:"channels"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &api))
	assert.Equal(t, "2.6.0", api.AsyncAPI)

	documented := map[string]bool{}
	for _, row := range TopicTable() {
		assert.Equal(t, row.Pattern, row.Build(placeholders), "the code builds %s differently", row.Pattern)
		assert.Contains(t, string(md), "`"+row.Pattern+"`", "docs/mqtt.md lacks %s", row.Pattern)
		assert.Contains(t, api.Channels, row.Pattern, "docs/asyncapi.yaml lacks channel %s", row.Pattern)
		documented[row.Pattern] = true
	}
	for ch := range api.Channels {
		assert.True(t, documented[ch], "asyncapi channel %s is not a topic the code uses", ch)
	}
	// The subscriptions are inside the documented topics.
	tp := Topics{Prefix: "p", Site: "s", Gateway: "g", Discovery: "homeassistant"}
	for _, filter := range []string{tp.Commands(), tp.HALocks(), tp.HALockdowns(), tp.HAOfficeModes(), tp.HAStatus()} {
		assert.NotEmpty(t, tp.Pattern(strings.ReplaceAll(filter, "+", "x")), filter)
	}
	for _, c := range Categories {
		assert.Contains(t, string(md), "| `"+c+"` |", "category %s", c)
	}
	for _, n := range CommandNames {
		assert.Contains(t, string(md), "| `"+n+"` |", "command %s", n)
	}
	for _, e := range append(ErrorTypes, ErrSyncFailed) {
		assert.Contains(t, string(md), "`"+e+"`", "error type %s", e)
	}
	// Every event type lands in a documented category row.
	for _, typ := range agent.EventTypes {
		cat := EventCategory(typ)
		if cat == CategorySystem {
			continue
		}
		assert.Regexp(t, "\\| `"+cat+"` \\|[^\\n]*`"+string(typ)+"`", string(md), "event %s in category %s", typ, cat)
	}
}

// TestAsyncAPIEnumsAreTheCode: every closed list of docs/asyncapi.yaml
// equals the Go constants it stands for, found in the repository's source
// by type, so a new event type, reason or error type cannot be added to
// the code without the contract (or the other way round).
func TestAsyncAPIEnumsAreTheCode(t *testing.T) {
	raw, err := os.ReadFile("../../docs/asyncapi.yaml")
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	enum := func(path ...string) []string {
		t.Helper()
		v := any(doc)
		for _, p := range path {
			switch x := v.(type) {
			case map[string]any:
				v = x[p]
			case []any:
				i, err := strconv.Atoi(p)
				require.NoError(t, err)
				require.Less(t, i, len(x))
				v = x[i]
			default:
				t.Fatalf("docs/asyncapi.yaml has no %s", strings.Join(path, "."))
			}
		}
		list, ok := v.([]any)
		require.True(t, ok, "docs/asyncapi.yaml: %s is not a list", strings.Join(path, "."))
		out := make([]string, len(list))
		for i, x := range list {
			out[i] = x.(string)
		}
		return out
	}
	schema := func(name string, rest ...string) []string {
		return enum(append([]string{"components", "schemas", name}, rest...)...)
	}
	message := func(name string, rest ...string) []string {
		return enum(append([]string{"components", "messages", name, "payload"}, rest...)...)
	}
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(drop, s) })
	}
	var enrolEnds []string
	for _, o := range without(sourceConsts(t, "EnrolOutcome"), string(agent.EnrolEnrolled)) {
		enrolEnds = append(enrolEnds, ErrEnrolment+o)
	}
	errorTypes := slices.Concat(ErrorTypes, []string{ErrSyncFailed},
		without(sourceConsts(t, "CommandReason"), string(agent.CommandAccepted)), enrolEnds, sourceConsts(t, "ErrorType"))
	strs := func(ts []agent.EventType) []string {
		out := make([]string, len(ts))
		for i, x := range ts {
			out[i] = string(x)
		}
		return out
	}
	kinds := sourceConsts(t, "CredentialKind")
	cachePattern := "^credentials_(" + strings.Join(kinds, "|") + ")$"

	for _, tc := range []struct {
		name      string
		doc, code []string
	}{
		{"event types", schema("eventType", "enum"), sourceConsts(t, "EventType")},
		{"decision reasons", schema("decisionReason", "enum"), sourceConsts(t, "Reason")},
		{"error types", schema("errorType", "enum"), errorTypes},
		{"credential kinds", schema("credentialKind", "enum"), kinds},
		{"categories", schema("category", "enum"), Categories},
		{"commands", schema("commandName", "enum"), CommandNames},
		{"access code states", schema("accessCode", "properties", "status", "enum"), sourceConsts(t, "AccessCodeStatus")},
		{"overrides", message("doorState", "properties", "override", "enum"), sourceConsts(t, "Override")},
		{"office mode", message("doorState", "properties", "office_mode", "enum"), sourceConsts(t, "OfficeState")},
		{"outbox states", message("telemetry", "properties", "outbox", "properties", "state", "enum"), []string{OutboxNormal, OutboxHighWater, OutboxFullState}},
		{"response statuses", message("response", "properties", "status", "enum"), []string{StatusPending, StatusSuccess, StatusError}},
		{"gateway states", message("status", "properties", "state", "enum"), []string{StateOnline, StateOffline}},
		{"Home Assistant access events", enum("components", "messages", "haAccess", "payload", "allOf", "1", "properties", "event_type", "enum"), strs(haAccessEvents)},
		{"Home Assistant command events", enum("components", "messages", "haCommand", "payload", "allOf", "1", "properties", "event_type", "enum"), strs(haCommandEvents)},
	} {
		assert.ElementsMatch(t, tc.code, tc.doc, "%s: docs/asyncapi.yaml against the code", tc.name)
	}
	cache := doc["components"].(map[string]any)["messages"].(map[string]any)["telemetry"].(map[string]any)["payload"].(map[string]any)["properties"].(map[string]any)["cache"].(map[string]any)
	assert.Contains(t, cache["patternProperties"], cachePattern, "telemetry cache: a count per credential kind")
	// Every door alarm is an event type.
	for _, a := range message("doorState", "properties", "alarms", "items", "enum") {
		assert.Contains(t, sourceConsts(t, "EventType"), a)
	}
}

// sourceConsts returns the values of every string constant declared with
// the named type (e.g. "EventType", also as agent.EventType) in the
// repository's Go source, tests excluded.
func sourceConsts(t *testing.T, typeName string) []string {
	t.Helper()
	constsOnce.Do(func() { constsByType, constsErr = scanConsts("../..") })
	require.NoError(t, constsErr)
	out := constsByType[typeName]
	require.NotEmpty(t, out, "no constants of type %s", typeName)
	return out
}

var (
	constsOnce   sync.Once
	constsByType map[string][]string
	constsErr    error
)

// scanConsts parses every non-test Go file under root and collects the
// string constants of each named type.
func scanConsts(root string) (map[string][]string, error) {
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				name := typeName(vs.Type)
				if name == "" {
					continue
				}
				for _, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, err := strconv.Unquote(lit.Value)
						if err != nil {
							return err
						}
						out[name] = append(out[name], s)
					}
				}
			}
		}
		return nil
	})
	return out, err
}

// typeName is the name of a constant's declared type, "" when it has none.
func typeName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}

func TestTopicPattern(t *testing.T) {
	tp := Topics{Prefix: "acme/doors", Site: "s1", Gateway: "g1", Discovery: "homeassistant"}
	assert.Equal(t, "{prefix}/{site}/{gateway}/door/{door}/state", tp.Pattern("acme/doors/s1/g1/door/front/state"))
	assert.Equal(t, "{prefix}/{site}/{gateway}/event/{category}", tp.Pattern(tp.Event("access")))
	assert.Equal(t, "{discovery}/{component}/{site}__{gateway}/{object_id}/config", tp.Pattern(tp.HAConfig("lock", "front__lock")))
	assert.Empty(t, tp.Pattern("acme/doors/s1/other/status"), "another gateway's topic is not ours")
	assert.Empty(t, tp.Pattern("acme/doors/s1/g1/door//state"))
	assert.Empty(t, tp.Pattern("homeassistant/lock/s2__g1/front__lock/config"), "another site's gateway g1 is not ours")

	under := Topics{Prefix: "portier", Site: "a_b", Gateway: "c", Discovery: "homeassistant"}
	assert.Equal(t, "homeassistant/sensor/a_-b__c/uptime/config", under.HAConfig("sensor", "uptime"))
	assert.Equal(t, "{discovery}/{component}/{site}__{gateway}/{object_id}/config", under.Pattern(under.HAConfig("sensor", "uptime")))
	assert.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9_-]+$`), under.HANode())
}
