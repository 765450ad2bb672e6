package agent

import (
	"fmt"
	"strings"
	"time"
)

// TimeOfDay is a wall-clock time in seconds since midnight (0–86399).
type TimeOfDay int32

// EndOfDay is Salto's "23:59:59": the last second of a day, inclusive.
const EndOfDay TimeOfDay = 86399

// ParseTimeOfDay reads "HH:MM" or "HH:MM:SS" (Salto's start_time/end_time).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	var h, m, sec int
	var err error
	switch len(s) {
	case 5:
		_, err = fmt.Sscanf(s, "%02d:%02d", &h, &m)
	case 8:
		_, err = fmt.Sscanf(s, "%02d:%02d:%02d", &h, &m, &sec)
	default:
		err = fmt.Errorf("length %d", len(s))
	}
	if err != nil || h > 23 || m > 59 || sec > 59 || h < 0 || m < 0 || sec < 0 {
		return 0, fmt.Errorf("time of day %q: want HH:MM[:SS]", s)
	}
	return TimeOfDay(h*3600 + m*60 + sec), nil
}

// String formats as HH:MM:SS.
func (t TimeOfDay) String() string {
	return fmt.Sprintf("%02d:%02d:%02d", t/3600, t/60%60, t%60)
}

// CivilTime is a wall-clock date and time with no zone, in seconds, encoded as
// the Unix time the same wall clock would have in UTC. Comparing civil times
// compares wall clocks, which is what Salto's date windows mean ("check-in
// 2026-03-29 02:30 site time"), and stays right across DST changes. Zero means
// "not set".
type CivilTime int64

// Civil returns the wall clock of t in t's own location, truncated to seconds.
func Civil(t time.Time) CivilTime {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return CivilTime(time.Date(y, mo, d, h, mi, s, 0, time.UTC).Unix())
}

// Time returns the civil time as a time.Time in UTC carrying the same wall clock.
func (c CivilTime) Time() time.Time { return time.Unix(int64(c), 0).UTC() }

// String formats as 2006-01-02T15:04:05, or "" when unset.
func (c CivilTime) String() string {
	if c == 0 {
		return ""
	}
	return c.Time().Format("2006-01-02T15:04:05")
}

// ParseScheduleDate reads a Salto start_date/end_date. A bare date means the
// whole day: its first second for a start, its last second for an end (Salto
// adds 00:00:00 and 23:59:59 itself). A date-time without offset is site wall
// time; one with an offset or Z is converted to the site zone loc.
func ParseScheduleDate(s string, isEnd bool, loc *time.Location) (CivilTime, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if isEnd {
			t = t.Add(24*time.Hour - time.Second)
		}
		return Civil(t), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return Civil(t), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if loc == nil {
			return 0, fmt.Errorf("date %q has an offset but no site zone is known", s)
		}
		return Civil(t.In(loc)), nil
	}
	return 0, fmt.Errorf("date %q: want YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS", s)
}

// Schedule is a Salto time schedule: weekdays, a daily window and an optional
// date (or date-time) window, all in site wall time.
//
// The daily window includes both ends to the second ("00:00:00"–"23:59:59" is
// the whole day). A window whose end is before its start runs overnight: it
// starts on a selected weekday and ends the next morning (Salto's UI cannot
// express this; a hand-written or imported schedule can, and this is the only
// reading that does not silently grant nothing).
type Schedule struct {
	ID        string
	Days      [7]bool // indexed by time.Weekday: Days[time.Monday]
	Start     TimeOfDay
	End       TimeOfDay
	StartDate CivilTime // 0: no start bound
	EndDate   CivilTime // 0: no end bound (inclusive)
}

// Always is the schedule Salto integrators call "Always".
func Always(id string) Schedule {
	return Schedule{ID: id, Days: [7]bool{true, true, true, true, true, true, true}, Start: 0, End: EndOfDay}
}

// AlwaysOn reports whether the schedule matches at every instant, so a
// decision through it does not depend on the clock.
func (s Schedule) AlwaysOn() bool {
	return s.Days == [7]bool{true, true, true, true, true, true, true} && s.Start == 0 && s.End == EndOfDay && s.StartDate == 0 && s.EndDate == 0
}

// ScheduleStatus is the outcome of evaluating a schedule at one instant.
type ScheduleStatus int

// Schedule outcomes.
const (
	ScheduleMatch   ScheduleStatus = iota // inside the schedule
	ScheduleOutside                       // inside the date window, outside the days/hours
	ScheduleBefore                        // before the start date
	ScheduleAfter                         // after the end date
)

// At evaluates the schedule at the wall clock of local (already in the site zone).
func (s Schedule) At(local time.Time) ScheduleStatus {
	c := Civil(local)
	if s.StartDate != 0 && c < s.StartDate {
		return ScheduleBefore
	}
	if s.EndDate != 0 && c > s.EndDate {
		return ScheduleAfter
	}
	h, m, sec := local.Clock()
	tod := TimeOfDay(h*3600 + m*60 + sec)
	wd := local.Weekday()
	if s.Start <= s.End {
		if s.Days[wd] && tod >= s.Start && tod <= s.End {
			return ScheduleMatch
		}
		return ScheduleOutside
	}
	// Overnight: the evening part belongs to today, the morning part to yesterday.
	if s.Days[wd] && tod >= s.Start || s.Days[(wd+6)%7] && tod <= s.End {
		return ScheduleMatch
	}
	return ScheduleOutside
}

// Validate checks the schedule can ever match.
func (s Schedule) Validate() error {
	any := false
	for _, d := range s.Days {
		any = any || d
	}
	if !any {
		return fmt.Errorf("schedule %q selects no weekday", s.ID)
	}
	if s.Start < 0 || s.Start > EndOfDay || s.End < 0 || s.End > EndOfDay {
		return fmt.Errorf("schedule %q has a time of day out of range", s.ID)
	}
	if s.StartDate != 0 && s.EndDate != 0 && s.EndDate < s.StartDate {
		return fmt.Errorf("schedule %q ends (%s) before it starts (%s)", s.ID, s.EndDate, s.StartDate)
	}
	return nil
}

// AccessGroup is Salto's unit of access: its members may open its locks during
// any of its time schedules. A group with no schedule grants nothing.
type AccessGroup struct {
	ID        string
	Name      string   // Salto customer_reference
	Members   []string // platform user ids
	Locks     []string // Salto lock ids
	Schedules []Schedule
}
