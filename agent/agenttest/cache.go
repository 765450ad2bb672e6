// Package agenttest holds in-memory fakes of agent's interfaces and contract
// suites that every implementation must pass, so fakes cannot drift from the
// real thing.
package agenttest

import (
	"context"
	"sync"
	"time"

	"github.com/portier-io/portier/agent"
)

// Cache is an in-memory agent.CredentialCache built from a snapshot.
type Cache struct {
	mu    sync.Mutex
	facts map[string]*agent.CredentialFacts
	view  *agent.View
	err   error
}

var _ agent.CredentialCache = (*Cache)(nil)

// NewCache builds a cache holding snap (which must be valid).
func NewCache(snap *agent.Snapshot) *Cache {
	c := &Cache{}
	c.Apply(snap)
	return c
}

// Apply replaces the cache's content with snap.
func (c *Cache) Apply(snap *agent.Snapshot) {
	loc, err := snap.Site.Location()
	if err != nil {
		loc = time.UTC
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := int64(1)
	if c.view != nil {
		gen = c.view.Generation + 1
	}
	v := &agent.View{Site: snap.Site, Location: loc, Groups: map[string]*agent.AccessGroup{}, Generation: gen}
	groupsOf := map[string][]string{}
	for i := range snap.Groups {
		g := snap.Groups[i]
		v.Groups[g.ID] = &g
		for _, m := range g.Members {
			groupsOf[m] = append(groupsOf[m], g.ID)
		}
	}
	users := map[string]*agent.User{}
	holder := map[string]string{}
	for i := range snap.Users {
		u := snap.Users[i]
		users[u.ID] = &u
		if u.TagNumber != "" {
			holder[u.TagNumber] = u.ID
		}
	}
	facts := map[string]*agent.CredentialFacts{}
	add := func(cr agent.Credential) {
		f := &agent.CredentialFacts{Credential: cr}
		if u, ok := users[cr.UserID]; ok {
			cp := *u
			f.User = &cp
			if ids := groupsOf[u.PlatformID]; len(ids) > 0 {
				f.GroupIDs = agent.SortedGroupIDs(ids)
			}
		}
		facts[cr.Key] = f
	}
	for _, e := range snap.Enrolments {
		if uid, ok := holder[e.TagNumber]; ok {
			add(agent.Credential{Key: e.Key, Kind: kindOfKey(e.Key), Origin: agent.OriginEnrolment, UserID: uid, TagNumber: e.TagNumber})
		}
	}
	for _, cr := range snap.Credentials {
		add(cr) // local and tag credentials win over derived ones with the same key
	}
	c.facts, c.view = facts, v
}

func kindOfKey(k string) agent.CredentialKind {
	if len(k) > 3 && k[:3] == "wg:" {
		return agent.KindWiegand
	}
	return agent.KindUID
}

// Fail makes every later Lookup return err (nil heals it).
func (c *Cache) Fail(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// Lookup implements agent.CredentialCache.
func (c *Cache) Lookup(_ context.Context, key string) (*agent.CredentialFacts, *agent.View, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, nil, c.err
	}
	if c.view == nil {
		return nil, nil, agent.ErrNoSnapshot
	}
	f, ok := c.facts[key]
	if !ok {
		return nil, c.view, nil
	}
	cp := *f
	if f.User != nil {
		u := *f.User
		cp.User = &u
	}
	return &cp, c.view, nil
}
