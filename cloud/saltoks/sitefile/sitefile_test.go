package sitefile_test

import (
	"os"
	"strings"
	"testing"
	_ "time/tzdata"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
)

var key = agent.PINKey("0123456789abcdef0123456789abcdef")

const minimal = `{"portier_snapshot": 1,
 "site": {"id": "s1", "customer_reference": "Site", "time_zone": "Europe/Berlin"},
 "locks": [{"id": "L1", "customer_reference": "Front", "lock_type": "wall_reader_pin", "battery_level": "fresh"}],
 "users": [{"id": "u1", "user": {"id": "p1", "first_name": "Ada", "last_name": "L", "tag_number": "2301234", "has_profile": false},
            "blocked": false, "subscription_state": "subscribed", "expires_at": "2027-01-01T00:00:00", "roles": []}],
 "access_groups": [{"id": "g1", "customer_reference": "All", "users": ["p1"], "locks": ["L1"],
   "time_schedules": [{"monday": true, "tuesday": false, "wednesday": false, "thursday": false, "friday": false,
     "saturday": false, "sunday": false, "start_time": "08:00", "end_time": "18:00:00", "start_date": "2026-11-01", "end_date": null}]}],
 "credentials": [{"user_id": "u1", "pin": "482915", "ends_at": "2026-12-31T23:00:00Z"},
                 {"user_id": "u1", "uid": "04:a1:b2:c3"},
                 {"user_id": "u1", "wiegand": {"format": "raw", "bits": 37, "raw": "1A2B3C4D5"}}],
 "enrolments": [{"uid": "DE:AD:BE:EF", "tag_number": "2301234"}]
}`

func TestReadMinimal(t *testing.T) {
	s, err := sitefile.Read(strings.NewReader(minimal), key)
	require.NoError(t, err)
	assert.Equal(t, "Europe/Berlin", s.Site.TimeZone)
	require.Len(t, s.Users, 1)
	u := s.Users[0]
	assert.Equal(t, "02301234", u.TagNumber)
	assert.True(t, u.UsePIN, "use_pin defaults to true")
	assert.Equal(t, "2026-12-31T23:00:00Z", u.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"), "a time without offset is site wall time")
	require.Len(t, s.Groups, 1)
	sc := s.Groups[0].Schedules[0]
	assert.Equal(t, "08:00:00", sc.Start.String())
	assert.Equal(t, "2026-11-01T00:00:00", sc.StartDate.String())
	keys := map[string]agent.Credential{}
	for _, c := range s.Credentials {
		keys[c.Key] = c
	}
	assert.Equal(t, agent.OriginSalto, keys["tag:02301234"].Origin)
	assert.Equal(t, agent.OriginLocal, keys[key.Key("482915")].Origin)
	assert.Equal(t, agent.KindUID, keys["uid:04A1B2C3"].Kind)
	assert.Equal(t, agent.KindWiegand, keys["wg:raw37:1A2B3C4D5"].Kind)
	assert.Equal(t, []agent.Enrolment{{Key: "uid:DEADBEEF", TagNumber: "02301234"}}, s.Enrolments)
}

func TestReadDemoSite(t *testing.T) {
	f, err := os.Open("../../../cmd/portier/defaults/demo-site.json")
	require.NoError(t, err)
	defer f.Close()
	s, err := sitefile.Read(f, key)
	require.NoError(t, err)
	assert.Len(t, s.Users, 9)
	assert.Len(t, s.Groups, 7)
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{"syntax", `"locks": [`, `line 3, column 13: invalid character '}'`},
		{"missing version", `{"portier_snapshot": 1,`, `portier_snapshot: missing`},
		{"future version", `"portier_snapshot": 1`, `version 7 is not supported`},
		{"unknown top-level key", `"locks":`, `unknown field "lokcs"`},
		{"bad type in a user", `"blocked": false`, `users[0] (u1): blocked: a JSON string cannot be a bool`},
		{"bad subscription", `"subscription_state": "subscribed"`, `users[0] (u1): subscription_state "paused"`},
		{"bad zone", `"time_zone": "Europe/Berlin"`, `site: site time zone: unknown time zone Mars/Olympus`},
		{"member not a user", `"users": ["p1"]`, `access_groups[0] (All): member "u1" is not a user's platform id`},
		{"lock not known", `"locks": ["L1"]`, `access_groups[0] (All): lock "L9" is not in locks`},
		{"bad schedule time", `"start_time": "08:00"`, `access_groups[0] (All).time_schedules[0]: start_time: time of day "8am"`},
		{"no weekday", `"monday": true`, `selects no weekday`},
		{"short PIN", `"pin": "482915"`, `credentials[0] (user u1): pin: invalid credential: PIN must have 6–10 digits, got 4`},
		{"two identifiers", `"uid": "04:a1:b2:c3"`, `credentials[1] (user u1): give exactly one of`},
		{"unknown key in a credential", `"user_id": "u1", "pin"`, `credentials[0] (user u1): unknown field "usr"`},
		{"credential of an unknown user", `{"user_id": "u1", "uid"`, `user "u2" is not in users`},
		{"duplicate credential", `"uid": "04:a1:b2:c3"`, `the same uid credential is given twice`},
		{"bad enrolment", `"uid": "DE:AD:BE:EF"`, `enrolments[0]: invalid credential: UID has 2 bytes`},
		{"trailing data", "\n}", `unexpected data after the snapshot object`},
		{"empty", "", `file: empty file`},
		{"truncated", "", `the JSON ends early`},
	}
	replacements := map[string]string{
		"syntax":                        `"locks": [}`,
		"missing version":               `{`,
		"future version":                `"portier_snapshot": 7`,
		"unknown top-level key":         `"lokcs":`,
		"bad type in a user":            `"blocked": "no"`,
		"bad subscription":              `"subscription_state": "paused"`,
		"bad zone":                      `"time_zone": "Mars/Olympus"`,
		"member not a user":             `"users": ["u1"]`,
		"lock not known":                `"locks": ["L9"]`,
		"bad schedule time":             `"start_time": "8am"`,
		"no weekday":                    `"monday": false`,
		"short PIN":                     `"pin": "4829"`,
		"two identifiers":               `"uid": "04:a1:b2:c3", "tag_number": "1"`,
		"unknown key in a credential":   `"user_id": "u1", "usr": 1, "pin"`,
		"credential of an unknown user": `{"user_id": "u2", "uid"`,
		"duplicate credential":          `"uid": "04:a1:b2:c3"}, {"user_id": "u1", "uid": "04A1B2C3"`,
		"bad enrolment":                 `"uid": "DE:AD"`,
		"trailing data":                 "\n} {}",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc string
			switch tt.name {
			case "empty":
				doc = ""
			case "truncated":
				doc = minimal[:200]
			default:
				repl, ok := replacements[tt.name]
				require.True(t, ok)
				require.Contains(t, minimal, tt.edit)
				doc = strings.Replace(minimal, tt.edit, repl, 1)
				if tt.name == "trailing data" {
					doc = strings.TrimSuffix(minimal, "}") + repl
				}
			}
			_, err := sitefile.Read(strings.NewReader(doc), key)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	t.Run("clear PIN without a key", func(t *testing.T) {
		_, err := sitefile.Read(strings.NewReader(minimal), nil)
		assert.ErrorContains(t, err, "clear PIN but no PIN key")
	})
	t.Run("errors never show a PIN", func(t *testing.T) {
		_, err := sitefile.Read(strings.NewReader(strings.Replace(minimal, `"pin": "482915"`, `"pin": "48291x"`, 1)), key)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "48291")
	})
}

// FuzzRead feeds arbitrary documents to the parser: it must never panic, and
// whatever it accepts must be a valid snapshot.
func FuzzRead(f *testing.F) {
	f.Add(minimal)
	f.Add(`{"portier_snapshot":1,"site":{"id":"s","time_zone":"UTC"}}`)
	f.Add(`{"portier_snapshot":1,"site":{"id":"s","time_zone":"UTC"},"users":[{"id":"a","user":{"id":"b","tag_number":"1"}}],"access_groups":[{"id":"g","users":["b"],"time_schedules":[{"monday":true,"start_time":"22:00","end_time":"06:00"}]}]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, doc string) {
		s, err := sitefile.Read(strings.NewReader(doc), key)
		if err != nil {
			return
		}
		if verr := s.Validate(); verr != nil {
			t.Fatalf("accepted an invalid snapshot: %v", verr)
		}
	})
}
