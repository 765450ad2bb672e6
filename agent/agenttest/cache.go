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

// Cache is an in-memory agent.CredentialCache built from a snapshot; it
// also stores enrolments and what doors learn about cards, as the SQLite
// cache does.
type Cache struct {
	mu    sync.Mutex
	facts map[string]*agent.CredentialFacts
	view  *agent.View
	err   error
	// Kept from the snapshot for Enrol.
	users  map[string]*agent.User
	holder map[string]string // tag number → user id
	groups map[string][]string
	cards  map[string]agent.CardRecord // by credential key; survives Apply
}

var (
	_ agent.CredentialCache = (*Cache)(nil)
	_ agent.CardStore       = (*Cache)(nil)
	_ agent.EnrolmentStore  = (*Cache)(nil)
)

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
	c.users, c.holder, c.groups = users, holder, groupsOf
	if c.cards == nil {
		c.cards = map[string]agent.CardRecord{}
	}
}

// Enrol implements agent.EnrolmentStore: the card opens for the tag's
// holder at once; its fingerprint replaces any recorded for the key.
func (c *Cache) Enrol(_ context.Context, e agent.Enrolment) (*agent.UserRef, error) {
	tag, err := agent.NormalizeTagNumber(e.TagNumber)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.view == nil {
		return nil, agent.ErrNoSnapshot
	}
	rec := c.cards[e.Key]
	rec.Fingerprint = e.Fingerprint
	c.cards[e.Key] = rec
	uid, ok := c.holder[tag]
	if !ok {
		delete(c.facts, e.Key)
		return nil, nil
	}
	u := *c.users[uid]
	f := &agent.CredentialFacts{Credential: agent.Credential{Key: e.Key, Kind: kindOfKey(e.Key), Origin: agent.OriginEnrolment, UserID: uid, TagNumber: tag}, User: &u}
	if ids := c.groups[u.PlatformID]; len(ids) > 0 {
		f.GroupIDs = agent.SortedGroupIDs(ids)
	}
	c.facts[e.Key] = f
	return u.Ref(), nil
}

// LearnCard implements agent.CardStore: a fingerprint is recorded only
// where none is, a generation only raises the recorded one.
func (c *Cache) LearnCard(_ context.Context, l agent.CardLearning) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	rec := c.cards[l.Key]
	if rec.Fingerprint == "" {
		rec.Fingerprint = l.Card.Fingerprint
	}
	rec.Generation = max(rec.Generation, l.Card.Generation)
	c.cards[l.Key] = rec
	return nil
}

// SetCard records what is known about a card credential, as enrolment or
// issuing would.
func (c *Cache) SetCard(key string, rec agent.CardRecord) {
	c.mu.Lock()
	c.cards[key] = rec
	c.mu.Unlock()
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
	cp.Card = c.cards[key]
	if f.User != nil {
		u := *f.User
		cp.User = &u
	}
	return &cp, c.view, nil
}
