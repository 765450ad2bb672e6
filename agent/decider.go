package agent

import (
	"context"
	"errors"
	"time"
)

// View is one consistent snapshot of the cache's small, hot part: the site and
// its access groups. Stores keep it in memory and swap it when a new snapshot
// lands; Generation says which snapshot it is.
type View struct {
	Site       Site
	Location   *time.Location
	Groups     map[string]*AccessGroup
	Generation int64
}

// Group implements GroupLookup.
func (v *View) Group(id string) (*AccessGroup, bool) {
	g, ok := v.Groups[id]
	return g, ok
}

// ErrNoSnapshot is returned by a cache that has never received a snapshot.
var ErrNoSnapshot = errors.New("the cache holds no site snapshot yet: run `portier import` or `portier sync`")

// CredentialCache is what the decider consumes from the cache: one read that
// returns the facts for a credential key (nil when unknown) and the view they
// were read from.
type CredentialCache interface {
	Lookup(ctx context.Context, key string) (*CredentialFacts, *View, error)
}

// Decider answers access requests from the local cache. It does the lookups
// and hands the facts to the pure Decide; it never calls the network.
type Decider struct {
	Cache  CredentialCache
	PINKey PINKey
	// StaleAfter, when positive, denies every request with ReasonCacheStale
	// once the last successful sync (SyncedAt) is older than this. Zero keeps
	// deciding from an old cache (the default policy: report the age instead).
	StaleAfter time.Duration
	SyncedAt   func() time.Time
	// UntrustedClock, when set, is asked on every decision; true applies the
	// deny_scheduled clock policy (see Input.UntrustedClock). Nil trusts the
	// clock.
	UntrustedClock func() bool
}

// Decide decides for the presented credential(s) at door. A cache failure
// denies with ReasonCacheUnavailable (fail secure) and also returns the error
// so the caller can raise it; a denial for any other reason is not an error.
func (dc *Decider) Decide(ctx context.Context, door Door, now time.Time, presented ...Presented) (Decision, error) {
	if dc.StaleAfter > 0 && dc.SyncedAt != nil {
		if at := dc.SyncedAt(); now.Sub(at) > dc.StaleAfter {
			d := Decision{Door: door.ID, Reason: ReasonCacheStale, Detail: "the cache was last synced at " + at.UTC().Format(time.RFC3339) + ", longer ago than the configured stale_after"}
			if len(presented) > 0 {
				d.Kind, d.Credential = presented[0].Kind, presented[0].Masked()
			}
			return d, nil
		}
	}
	in := Input{Door: door, Now: now, Credentials: make([]Resolved, len(presented))}
	if dc.UntrustedClock != nil {
		in.UntrustedClock = dc.UntrustedClock()
	}
	var view *View
	for i, p := range presented {
		r := Resolved{Presented: p}
		if p.Card != nil && p.Card.Outcome != "" && p.Card.Outcome != CardOK {
			// The reader could not finish with the card: Decide refuses it
			// without facts.
			in.Credentials[i] = r
			continue
		}
		key, err := p.Key(dc.PINKey)
		if err != nil {
			r.Err = err
			in.Credentials[i] = r
			continue
		}
		facts, v, err := dc.Cache.Lookup(ctx, key)
		if err != nil {
			d := Decision{Door: door.ID, Reason: ReasonCacheUnavailable, Detail: "the credential cache cannot be read", Kind: p.Kind, Credential: p.Masked()}
			return d, err
		}
		if view == nil {
			view = v
		}
		r.Facts = facts
		in.Credentials[i] = r
	}
	if view == nil {
		// Every credential was malformed: the decision needs no cache.
		view = &View{Location: time.UTC}
	}
	in.Groups, in.Location = view, view.Location
	return Decide(in), nil
}
