package agent

import (
	"fmt"
	"time"
)

// Site is one Salto KS site. Schedules are evaluated in its time zone.
type Site struct {
	ID       string `json:"id"`            // Salto site UUID
	UID      string `json:"uid,omitempty"` // human site id, e.g. "DE0000000000"
	Name     string `json:"name"`          // Salto customer_reference
	TimeZone string `json:"time_zone"`     // IANA zone name, e.g. "Europe/Berlin"
}

// Location loads the site's time zone. An empty zone is an error: evaluating a
// schedule in the wrong zone opens doors at the wrong hours.
func (s Site) Location() (*time.Location, error) {
	if s.TimeZone == "" {
		return nil, fmt.Errorf("site %q has no time zone", s.ID)
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("site time zone: %w", err)
	}
	return loc, nil
}

// Lock is a Salto lock. Gateway doors are mapped to lock ids so that an access
// group containing the lock grants access to the door.
type Lock struct {
	ID   string
	Name string
}
