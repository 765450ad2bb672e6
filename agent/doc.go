// Package agent is Portier's domain: sites, doors, users, credentials, access
// groups and time schedules; the pure access decision; and the small interfaces
// the rest of the agent consumes.
//
// Dependency rule: this package imports the standard library only. Storage
// (sqlite), hardware (hal) and the cloud (cloud/...) import agent, never the
// other way round.
package agent
