package agenttest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/portier-io/portier/agent"
)

// GenOptions sizes a synthetic site.
type GenOptions struct {
	Users       int // site users (each holds a Salto tag)
	Groups      int // access groups
	Locks       int
	Credentials int // total credentials, Salto tags included (≥ 2×Users)
	Seed        uint64
}

// LargeSite is the benchmark site of the foundation issue: 100,000 users,
// 1,000 access groups, 200 locks and 1,000,000 credentials.
func LargeSite() GenOptions {
	return GenOptions{Users: 100_000, Groups: 1_000, Locks: 200, Credentials: 1_000_000, Seed: 1}
}

// Generated is a synthetic site plus samples of what can be presented at its
// doors, for benchmarks.
type Generated struct {
	Snapshot *agent.Snapshot
	Door     agent.Door        // a door covered by a tenth of the locks
	Samples  []agent.Presented // known credentials of every kind, shuffled
	Unknown  []agent.Presented // credentials the site does not know
}

// Generate builds a deterministic synthetic site. Credentials are spread over
// every kind: per user one Salto tag, one PIN and one enrolled UID (UID →
// tag number), and the rest local UIDs and Wiegand fobs.
func Generate(o GenOptions) *Generated {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	key := PINKey()
	s := &agent.Snapshot{Site: agent.Site{ID: "gen-site", Name: "Generated", TimeZone: "Europe/Berlin"}}
	for i := range o.Locks {
		s.Locks = append(s.Locks, agent.Lock{ID: fmt.Sprintf("10c4e000-0000-4000-8000-%012d", i), Name: fmt.Sprintf("Lock %d", i)})
	}
	var week [7]bool
	for d := range week {
		week[d] = d != int(time.Sunday)
	}
	for i := range o.Groups {
		g := agent.AccessGroup{ID: fmt.Sprintf("group-%05d", i), Name: fmt.Sprintf("Plan %d", i)}
		for range 1 + rng.IntN(5) {
			g.Locks = append(g.Locks, s.Locks[rng.IntN(o.Locks)].ID)
		}
		g.Schedules = []agent.Schedule{agent.Always("s-always")}
		if i%3 == 1 {
			g.Schedules = []agent.Schedule{{ID: "s-office", Days: week, Start: 7 * 3600, End: 21 * 3600}}
		}
		s.Groups = append(s.Groups, g)
	}
	gen := &Generated{Snapshot: s, Door: agent.Door{ID: "bench", Mode: agent.ModeCardOrPIN}}
	for i := 0; i < o.Locks; i += 10 {
		gen.Door.LockIDs = append(gen.Door.LockIDs, s.Locks[i].ID)
	}
	// uid makes distinct UIDs by construction: a family byte, then n.
	uid := func(family byte, n uint64, size int) []byte {
		b := make([]byte, size)
		b[0] = family
		for j := size - 1; j > 0; j-- {
			b[j] = byte(n)
			n >>= 8
		}
		return b
	}
	add := func(p agent.Presented, c agent.Credential) {
		k, err := p.Key(key)
		if err != nil {
			panic(err)
		}
		c.Key, c.Kind, c.Origin = k, p.Kind, agent.OriginLocal
		s.Credentials = append(s.Credentials, c)
		if len(gen.Samples) < 200_000 {
			gen.Samples = append(gen.Samples, p)
		}
	}
	for i := range o.Users {
		u := agent.User{
			ID: fmt.Sprintf("su-%07d", i), PlatformID: fmt.Sprintf("pu-%07d", i),
			FirstName: "User", LastName: fmt.Sprint(i), TagNumber: fmt.Sprintf("%08d", 10_000_000+i),
			Subscription: agent.Subscribed, UsePIN: true,
		}
		switch i % 100 {
		case 7:
			u.Blocked = true
		case 13:
			u.Subscription = agent.Suspended
		}
		s.Users = append(s.Users, u)
		for range 1 + rng.IntN(3) {
			g := &s.Groups[rng.IntN(o.Groups)]
			g.Members = append(g.Members, u.PlatformID)
		}
		add(agent.KeypadPIN(fmt.Sprintf("%08d", 20_000_000+i)), agent.Credential{UserID: u.ID})
		e := uid(0x04, uint64(i), 7)
		ek, _ := agent.UIDKey(e)
		s.Enrolments = append(s.Enrolments, agent.Enrolment{Key: ek, TagNumber: u.TagNumber})
		gen.Samples = append(gen.Samples, agent.CardUID(e), agent.CardTagNumber(u.TagNumber))
	}
	tags, err := agent.TagCredentials(s.Users)
	if err != nil {
		panic(err)
	}
	s.Credentials = append(s.Credentials, tags...)
	rest := o.Credentials - 3*o.Users // tags, PINs and enrolled UIDs so far
	for i := range rest {
		u := &s.Users[rng.IntN(o.Users)]
		if i%4 == 0 {
			add(agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: uint64(i % 256), Card: uint64(i)}), agent.Credential{UserID: u.ID})
		} else {
			add(agent.CardUID(uid(0x08, uint64(i), 4+3*(i%2))), agent.Credential{UserID: u.ID})
		}
	}
	for i := range 10_000 {
		gen.Unknown = append(gen.Unknown, agent.CardUID(uid(0x0F, uint64(i), 4)), agent.KeypadPIN(fmt.Sprintf("%09d", i)))
	}
	rng.Shuffle(len(gen.Samples), func(i, j int) { gen.Samples[i], gen.Samples[j] = gen.Samples[j], gen.Samples[i] })
	return gen
}
