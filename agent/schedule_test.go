package agent_test

import (
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func tod(t *testing.T, s string) agent.TimeOfDay {
	t.Helper()
	v, err := agent.ParseTimeOfDay(s)
	require.NoError(t, err)
	return v
}

func days(ds ...time.Weekday) [7]bool {
	var out [7]bool
	for _, d := range ds {
		out[d] = true
	}
	return out
}

var weekdays = days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday)

func TestScheduleAt(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	civil := func(s string, end bool) agent.CivilTime {
		c, err := agent.ParseScheduleDate(s, end, berlin)
		require.NoError(t, err)
		return c
	}
	office := agent.Schedule{Days: weekdays, Start: tod(t, "08:00"), End: tod(t, "20:00:00")}
	night := agent.Schedule{Days: days(time.Monday), Start: tod(t, "22:00"), End: tod(t, "06:00")}
	dayPass := agent.Schedule{Days: days(0, 1, 2, 3, 4, 5, 6), Start: 0, End: agent.EndOfDay, StartDate: civil("2026-11-23", false), EndDate: civil("2026-11-23", true)}
	stay := agent.Schedule{Days: days(0, 1, 2, 3, 4, 5, 6), Start: 0, End: agent.EndOfDay, StartDate: civil("2026-11-23T15:00:00", false), EndDate: civil("2026-11-25T11:00:00", true)}
	dstNight := agent.Schedule{Days: days(time.Sunday), Start: tod(t, "02:00"), End: tod(t, "02:59:59")}

	tests := []struct {
		name string
		s    agent.Schedule
		at   string // site wall time
		want agent.ScheduleStatus
	}{
		{"office open", office, "2026-11-24 08:00:00", agent.ScheduleMatch},
		{"office last second", office, "2026-11-24 20:00:59", agent.ScheduleOutside},
		{"office end second included", office, "2026-11-24 20:00:00", agent.ScheduleMatch},
		{"office one second early", office, "2026-11-24 07:59:59", agent.ScheduleOutside},
		{"office on saturday", office, "2026-11-28 10:00:00", agent.ScheduleOutside},
		{"always at midnight", agent.Always("a"), "2026-11-24 00:00:00", agent.ScheduleMatch},
		{"always at last second", agent.Always("a"), "2026-11-24 23:59:59", agent.ScheduleMatch},
		{"overnight evening part", night, "2026-11-23 23:30:00", agent.ScheduleMatch},
		{"overnight after midnight belongs to monday", night, "2026-11-24 05:59:59", agent.ScheduleMatch},
		{"overnight ends", night, "2026-11-24 06:00:01", agent.ScheduleOutside},
		{"overnight not from sunday", night, "2026-11-23 03:00:00", agent.ScheduleOutside},
		{"overnight tuesday evening not selected", night, "2026-11-24 23:00:00", agent.ScheduleOutside},
		{"day pass before", dayPass, "2026-11-22 23:59:59", agent.ScheduleBefore},
		{"day pass first second", dayPass, "2026-11-23 00:00:00", agent.ScheduleMatch},
		{"day pass last second", dayPass, "2026-11-23 23:59:59", agent.ScheduleMatch},
		{"day pass after", dayPass, "2026-11-24 00:00:00", agent.ScheduleAfter},
		{"stay before check-in", stay, "2026-11-23 14:59:59", agent.ScheduleBefore},
		{"stay at check-in", stay, "2026-11-23 15:00:00", agent.ScheduleMatch},
		{"stay at check-out", stay, "2026-11-25 11:00:00", agent.ScheduleMatch},
		{"stay after check-out", stay, "2026-11-25 11:00:01", agent.ScheduleAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, err := time.ParseInLocation("2006-01-02 15:04:05", tt.at, berlin)
			require.NoError(t, err)
			assert.Equal(t, tt.want, tt.s.At(at))
		})
	}

	t.Run("DST spring forward: the skipped hour never matches", func(t *testing.T) {
		// 2026-03-29 02:00 CET jumps to 03:00 CEST in Berlin.
		before := time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC).In(berlin) // 01:59:59 CET
		after := before.Add(time.Second)                                    // 03:00:00 CEST
		assert.Equal(t, "01:59:59", before.Format("15:04:05"))
		assert.Equal(t, "03:00:00", after.Format("15:04:05"))
		assert.Equal(t, agent.ScheduleOutside, dstNight.At(before))
		assert.Equal(t, agent.ScheduleOutside, dstNight.At(after))
		// An office day that spans the change keeps wall-clock hours.
		sunday := agent.Schedule{Days: days(time.Sunday), Start: tod(t, "08:00"), End: tod(t, "20:00")}
		assert.Equal(t, agent.ScheduleMatch, sunday.At(time.Date(2026, 3, 29, 6, 0, 0, 0, time.UTC).In(berlin))) // 08:00 CEST
		assert.Equal(t, agent.ScheduleOutside, sunday.At(time.Date(2026, 3, 29, 5, 59, 59, 0, time.UTC).In(berlin)))
	})
	t.Run("DST fall back: the repeated hour matches twice", func(t *testing.T) {
		// 2026-10-25 03:00 CEST falls back to 02:00 CET.
		first := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC).In(berlin)  // 02:30 CEST
		second := time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC).In(berlin) // 02:30 CET
		require.Equal(t, first.Format("15:04"), second.Format("15:04"))
		assert.Equal(t, agent.ScheduleMatch, dstNight.At(first))
		assert.Equal(t, agent.ScheduleMatch, dstNight.At(second))
		assert.Equal(t, agent.ScheduleOutside, dstNight.At(time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC).In(berlin))) // 03:00 CET
	})
	t.Run("a zone far from UTC decides by its own weekday", func(t *testing.T) {
		kiritimati := mustLoc(t, "Pacific/Kiritimati") // UTC+14
		// Sunday 22:00 UTC is already Monday 12:00 on Kiritimati.
		at := time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC)
		assert.Equal(t, agent.ScheduleMatch, office.At(at.In(kiritimati)))
		assert.Equal(t, agent.ScheduleOutside, office.At(at.In(berlin)))
		honolulu := mustLoc(t, "Pacific/Honolulu") // UTC-10: still Sunday 12:00
		assert.Equal(t, agent.ScheduleOutside, office.At(at.In(honolulu)))
	})
}

func TestParseScheduleTimes(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	for _, s := range []string{"24:00", "12:60", "1:00", "12:00:60", "", "noon"} {
		_, err := agent.ParseTimeOfDay(s)
		assert.Error(t, err, s)
	}
	c, err := agent.ParseScheduleDate("2026-11-23T14:00:00Z", false, berlin)
	require.NoError(t, err)
	assert.Equal(t, "2026-11-23T15:00:00", c.String(), "an instant with an offset is converted to site wall time")
	c, err = agent.ParseScheduleDate("2026-11-23", true, berlin)
	require.NoError(t, err)
	assert.Equal(t, "2026-11-23T23:59:59", c.String())
	_, err = agent.ParseScheduleDate("23.11.2026", false, berlin)
	assert.Error(t, err)
}

func TestScheduleValidate(t *testing.T) {
	assert.ErrorContains(t, agent.Schedule{ID: "x", End: 10}.Validate(), "selects no weekday")
	bad := agent.Always("y")
	bad.StartDate, bad.EndDate = 200, 100
	assert.ErrorContains(t, bad.Validate(), "ends")
	assert.NoError(t, agent.Always("z").Validate())
}
