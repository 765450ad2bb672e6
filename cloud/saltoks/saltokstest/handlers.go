package saltokstest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portier-io/portier/cloud/saltoks"
)

func (k *Fake) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /connect/token", k.token)
	api := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		method, path, _ := strings.Cut(pattern, " ")
		m.HandleFunc(method+" /{ver}"+path, k.authed(h))
	}
	api("GET /sites", k.listSites)
	api("GET /sites/{site}", k.siteOnly(k.getSite))
	api("GET /sites/{site}/subscription", k.siteOnly(k.getSubscription))
	api("GET /sites/{site}/locks", k.siteOnly(k.listLocks))
	api("GET /sites/{site}/locks/{lock}", k.siteOnly(k.getLock))
	api("GET /sites/{site}/access_groups", k.siteOnly(k.listGroups))
	api("GET /sites/{site}/access_groups/{ag}/locks", k.siteOnly(k.listGroupLocks))
	api("GET /sites/{site}/access_groups/{ag}/users", k.siteOnly(k.listGroupUsers))
	api("POST /sites/{site}/access_groups/{ag}/users", k.siteOnly(k.addGroupUser))
	api("DELETE /sites/{site}/access_groups/{ag}/users/{uid}", k.siteOnly(k.removeGroupUser))
	api("GET /sites/{site}/access_groups/{ag}/time_schedules", k.siteOnly(k.listGroupSchedules))
	api("GET /sites/{site}/users", k.siteOnly(k.listUsers))
	api("POST /sites/{site}/users", k.siteOnly(k.createUser))
	api("POST /sites/{site}/guests", k.siteOnly(k.createGuest))
	api("GET /sites/{site}/users/{id}", k.siteOnly(k.getUser))
	api("PATCH /sites/{site}/users/{id}", k.siteOnly(k.patchUser))
	api("DELETE /sites/{site}/users/{id}", k.siteOnly(k.deleteUser))
	api("PUT /sites/{site}/users/{id}/pin", k.siteOnly(k.putPIN))
	api("GET /sites/{site}/users/{id}/keys", k.siteOnly(k.getKeys))
	api("PATCH /sites/{site}/users/{id}/subscription", k.siteOnly(k.patchSubscription))
	k.mux = m
}

// writeError writes the Connect API v1.x error body.
func (k *Fake) writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	var c any = code
	if k.opt.NumericErrorCodes && code != "" {
		n, _ := strconv.Atoi(code)
		c = n
	}
	if code == "" {
		c = nil
	}
	w.Write(jsonMarshal(map[string]any{"ErrorCode": c, "Message": msg}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(jsonMarshal(v))
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	w.Write(jsonMarshal(body))
}

// token is the identity server's /connect/token.
func (k *Fake) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "")
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != k.opt.ClientID || secret != k.opt.ClientSecret {
		oauthError(w, 401, "invalid_client", "")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	for _, s := range scopes {
		if !slices.Contains([]string{"user_api.full_access", "offline_access", "openid", "profile"}, s) {
			oauthError(w, 400, "invalid_scope", "")
			return
		}
	}
	offline := slices.Contains(scopes, "offline_access")
	k.mu.Lock()
	defer k.mu.Unlock()
	switch r.PostForm.Get("grant_type") {
	case "password":
		if r.PostForm.Get("username") != k.opt.Username || r.PostForm.Get("password") != k.opt.Password {
			oauthError(w, 400, "invalid_grant", "invalid_username_or_password")
			return
		}
		if !slices.Contains(scopes, "user_api.full_access") {
			oauthError(w, 400, "invalid_scope", "")
			return
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !k.refresh[rt] {
			oauthError(w, 400, "invalid_grant", "")
			return
		}
		delete(k.refresh, rt) // one-time use: every refresh rotates it
		offline = true
	case "client_credentials":
		if !k.opt.AllowClientCredentials {
			oauthError(w, 400, "unauthorized_client", "")
			return
		}
	default:
		oauthError(w, 400, "unsupported_grant_type", "")
		return
	}
	at := "fake-at-" + randomHex(16)
	k.tokens[at] = k.clock().Add(TokenLifetime)
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(TokenLifetime / time.Second), "scope": "user_api.full_access"}
	if offline {
		rt := "fake-rt-" + randomHex(16)
		k.refresh[rt] = true
		resp["refresh_token"] = rt
		resp["scope"] = "user_api.full_access offline_access"
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 200, resp)
}

// IssueRefreshToken makes a refresh token (as an authorization-code login with
// offline_access would give).
func (k *Fake) IssueRefreshToken() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	rt := "fake-rt-" + randomHex(16)
	k.refresh[rt] = true
	return rt
}

func (k *Fake) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v := r.PathValue("ver"); v != "v1.1" && v != "v1.2" {
			k.writeError(w, 404, "", "No HTTP resource was found that matches the request URI")
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		k.mu.Lock()
		exp, known := k.tokens[tok]
		valid := ok && known && k.clock().Before(exp)
		k.mu.Unlock()
		if !valid {
			desc := "The access token is invalid"
			if known {
				desc = "The access token expired"
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+desc+`"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// siteOnly checks the site id and holds the lock for the handler.
func (k *Fake) siteOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The answer is built under the lock and sent after it, so a client
		// slow to read one answer does not hold up the others.
		rec := httptest.NewRecorder()
		k.mu.Lock()
		k.siteRoute(rec, r, h)
		k.mu.Unlock()
		for key, v := range rec.Header() {
			w.Header()[key] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}
}

func (k *Fake) siteRoute(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	if id := r.PathValue("site"); !strings.EqualFold(id, k.site.ID) {
		// A human site uid (DE…) is a bad parameter; another site's UUID
		// is one the token user has no rights on.
		if len(id) == 36 && strings.Count(id, "-") == 4 {
			k.writeError(w, 403, "2203", "User does not have permission to access this site")
			return
		}
		k.writeError(w, 400, "1100", "Invalid site id")
		return
	}
	h(w, r)
}

// --- wire shapes ---------------------------------------------------------------

func (k *Fake) siteJSON() map[string]any {
	return map[string]any{
		"id": k.site.ID, "site_uid": k.site.SiteUID, "customer_reference": k.site.CustomerReference,
		"country_code": "DE", "time_zone": k.site.TimeZone, "active_user_amount": len(k.users),
		"subscribed_user_amount": k.subscribedCount(), "subscription_valid": true, "active_iq_amount": 1,
		"pin_enabled": true, "installation_state": "released", "mkey_compatible": true, "store_events_ttl": "90.00:00:00",
	}
}

func lockJSON(l saltoks.Lock) map[string]any {
	return map[string]any{"id": l.ID, "customer_reference": l.CustomerReference, "lock_type": "escutcheon_pin",
		"communication_type": "blue_net", "online": true, "locked_state": "locked", "iq_link_state": "attached",
		"battery_level": "fresh", "floor": nil}
}

func userJSON(u *user) map[string]any {
	usePIN := u.UsePIN == nil || *u.UsePIN
	var email any
	if u.User.Email != nil {
		email = *u.User.Email
	}
	var tag any
	if u.User.TagNumber != nil && *u.User.TagNumber != "" {
		tag = *u.User.TagNumber
	}
	var exp any
	if u.ExpiresAt != nil {
		exp = *u.ExpiresAt
	}
	return map[string]any{
		"id": u.ID,
		"user": map[string]any{"id": u.User.ID, "email": email, "first_name": u.User.FirstName,
			"last_name": u.User.LastName, "image_url": nil, "tag_number": tag, "has_profile": email != nil,
			"is_managed_by_current_site": true},
		"roles":                     []any{map[string]any{"id": "role-" + u.role, "customer_reference": u.role, "code": u.role, "is_hierarchical": true}},
		"alias":                     u.Alias,
		"blocked":                   u.Blocked,
		"subscription_state":        u.SubscriptionState,
		"expires_at":                exp,
		"use_pin":                   usePIN,
		"remote_access":             false,
		"toggle_easy_office_mode":   false,
		"toggle_manual_office_mode": false,
		"override_privacy_mode":     false,
		"tag_owned_by_this_site":    tag != nil,
		"data_removal_expires_at":   nil,
	}
}

// json is the user's encoded site-user object, cached until it changes.
func (u *user) json() []byte {
	if u.enc == nil {
		u.enc = jsonMarshal(userJSON(u))
	}
	return u.enc
}

// memberJSON is the user as an access-group member item, cached likewise.
func (u *user) memberJSON() []byte {
	if u.menc == nil {
		u.menc = jsonMarshal(memberObject(u))
	}
	return u.menc
}

// touch drops the cached encodings after a change.
func (u *user) touch() { u.enc, u.menc = nil, nil }

func memberObject(u *user) map[string]any {
	var email any
	if u.User.Email != nil {
		email = *u.User.Email
	}
	return map[string]any{"id": u.User.ID, "first_name": u.User.FirstName, "last_name": u.User.LastName, "email": email}
}

func scheduleJSON(ts saltoks.TimeSchedule) map[string]any {
	var sd, ed any
	if ts.StartDate != nil {
		sd = *ts.StartDate
	}
	if ts.EndDate != nil {
		ed = *ts.EndDate
	}
	return map[string]any{"id": ts.ID, "monday": ts.Monday, "tuesday": ts.Tuesday, "wednesday": ts.Wednesday,
		"thursday": ts.Thursday, "friday": ts.Friday, "saturday": ts.Saturday, "sunday": ts.Sunday,
		"start_time": normTime(ts.StartTime), "end_time": normTime(ts.EndTime), "start_date": sd, "end_date": ed}
}

// normTime answers HH:MM:SS as Salto does (it normalises what it was given).
func normTime(s string) string {
	if len(s) == 5 {
		return s + ":00"
	}
	return s
}

// --- lists --------------------------------------------------------------------

// listItem is one element of a list: its id and lazily encoded JSON.
type listItem struct {
	id   string
	sort string // $orderby customer_reference
	raw  func() []byte
}

func encoded(v any) func() []byte { return func() []byte { return jsonMarshal(v) } }

// serveList applies OData $filter, $orderby, $skip, $top and $count to items
// (sorted by id) and writes the {items, next_page_link, count} envelope, or a
// bare array when bare is set (the quirk measured on GET /v1.2/sites).
func (k *Fake) serveList(w http.ResponseWriter, r *http.Request, items []listItem, bare bool) {
	k.serveListN(w, r, len(items), func(i int) listItem { return items[i] }, bare)
}

// serveListN is serveList over n items produced on demand, so paging a large
// list does not build every item for every page.
func (k *Fake) serveListN(w http.ResponseWriter, r *http.Request, n int, at func(int) listItem, bare bool) {
	q := r.URL.Query()
	ob := strings.TrimSpace(q.Get("$orderby"))
	if q.Get("$filter") != "" || (ob != "" && ob != "id" && ob != "id asc") {
		items := make([]listItem, n)
		for i := range items {
			items[i] = at(i)
		}
		k.serveItems(w, r, items, bare)
		return
	}
	k.page(w, r, n, at, bare)
}

func (k *Fake) serveItems(w http.ResponseWriter, r *http.Request, items []listItem, bare bool) {
	q := r.URL.Query()
	if f := q.Get("$filter"); f != "" {
		pred, err := parseFilter(f)
		if err != nil {
			k.writeError(w, 400, "1100", "The query specified in the URI is not valid: "+err.Error())
			return
		}
		var kept []listItem
		for _, it := range items {
			var obj map[string]any
			json.Unmarshal(it.raw(), &obj)
			if pred(obj) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	switch ob := strings.TrimSpace(q.Get("$orderby")); ob {
	case "", "id", "id asc":
	case "id desc":
		items = slices.Clone(items)
		slices.Reverse(items)
	case "customer_reference", "customer_reference asc":
		items = slices.Clone(items)
		slices.SortStableFunc(items, func(a, b listItem) int { return strings.Compare(a.sort, b.sort) })
	default:
		k.writeError(w, 400, "1102", "Invalid $orderby: "+ob)
		return
	}
	k.page(w, r, len(items), func(i int) listItem { return items[i] }, bare)
}

// page applies $skip, $top and $count and writes the answer.
func (k *Fake) page(w http.ResponseWriter, r *http.Request, total int, at func(int) listItem, bare bool) {
	q := r.URL.Query()
	skip, top := 0, k.opt.DefaultPageSize
	if v := q.Get("$skip"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			k.writeError(w, 400, "1100", "Invalid $skip")
			return
		}
		skip = n
	}
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			k.writeError(w, 400, "1100", "Invalid $top")
			return
		}
		top = n
	}
	if top > k.opt.MaxPageSize {
		top = k.opt.MaxPageSize
	}
	if skip > total {
		skip = total
	}
	end := min(skip+top, total)
	var buf bytes.Buffer
	if !bare {
		buf.WriteString(`{"items":`)
	}
	buf.WriteByte('[')
	for i := skip; i < end; i++ {
		if i > skip {
			buf.WriteByte(',')
		}
		buf.Write(at(i).raw())
	}
	buf.WriteByte(']')
	if !bare {
		var next any
		if end < total {
			nq := url.Values{}
			for key, v := range q {
				nq[key] = v
			}
			nq.Set("$skip", strconv.Itoa(end))
			nq.Set("$top", strconv.Itoa(top))
			next = "http://" + r.Host + r.URL.Path + "?" + nq.Encode()
		}
		var count any
		if q.Get("$count") == "true" || q.Get("$inlinecount") == "allpages" {
			count = total
		}
		buf.WriteString(`,"next_page_link":`)
		buf.Write(jsonMarshal(next))
		buf.WriteString(`,"count":`)
		buf.Write(jsonMarshal(count))
		buf.WriteByte('}')
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(200)
	w.Write(buf.Bytes())
}

func (k *Fake) listSites(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	site := k.siteJSON()
	items := []listItem{{id: k.site.ID, sort: k.site.CustomerReference, raw: encoded(site)}}
	k.serveList(w, r, items, r.PathValue("ver") == "v1.2")
}

func (k *Fake) getSite(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, k.siteJSON()) }

func (k *Fake) getSubscription(w http.ResponseWriter, r *http.Request) {
	amount := k.opt.SeatLimit
	if amount == 0 {
		amount = 1 << 20
	}
	writeJSON(w, 200, map[string]any{"user_amount": amount, "type": "professional", "features": []string{"pods", "events_streaming", "activity_log"}})
}

func (k *Fake) listLocks(w http.ResponseWriter, r *http.Request) {
	items := make([]listItem, len(k.locks))
	for i, l := range k.locks {
		items[i] = listItem{id: l.ID, sort: l.CustomerReference, raw: encoded(lockJSON(l))}
	}
	k.serveList(w, r, items, false)
}

func (k *Fake) getLock(w http.ResponseWriter, r *http.Request) {
	for _, l := range k.locks {
		if strings.EqualFold(l.ID, r.PathValue("lock")) {
			writeJSON(w, 200, lockJSON(l))
			return
		}
	}
	k.writeError(w, 404, "2202", "Lock not found")
}

func (k *Fake) listGroups(w http.ResponseWriter, r *http.Request) {
	items := make([]listItem, len(k.groups))
	for i, g := range k.groups {
		items[i] = listItem{id: g.ID, sort: g.CustomerReference, raw: encoded(map[string]any{"id": g.ID, "customer_reference": g.CustomerReference})}
	}
	k.serveList(w, r, items, false)
}

func (k *Fake) group(w http.ResponseWriter, r *http.Request) *group {
	g := k.groupIDs[idKey(r.PathValue("ag"))]
	if g == nil {
		k.writeError(w, 404, "2202", "Access group not found")
	}
	return g
}

func (k *Fake) listGroupLocks(w http.ResponseWriter, r *http.Request) {
	g := k.group(w, r)
	if g == nil {
		return
	}
	ids := slices.Sorted(slices.Values(g.Locks))
	var items []listItem
	for _, id := range ids {
		for _, l := range k.locks {
			if l.ID == id {
				items = append(items, listItem{id: l.ID, sort: l.CustomerReference, raw: encoded(lockJSON(l))})
			}
		}
	}
	k.serveList(w, r, items, false)
}

func (k *Fake) listGroupUsers(w http.ResponseWriter, r *http.Request) {
	g := k.group(w, r)
	if g == nil {
		return
	}
	ids := slices.Sorted(slices.Values(g.Users))
	items := make([]listItem, 0, len(ids))
	for _, id := range ids {
		u := k.byPlat[idKey(id)]
		if u == nil || !k.visible(u) {
			continue
		}
		items = append(items, listItem{id: id, sort: u.User.LastName, raw: u.memberJSON})
	}
	k.serveList(w, r, items, false)
}

func (k *Fake) listGroupSchedules(w http.ResponseWriter, r *http.Request) {
	g := k.group(w, r)
	if g == nil {
		return
	}
	ts := slices.Clone(g.TimeSchedules)
	slices.SortFunc(ts, func(a, b saltoks.TimeSchedule) int { return strings.Compare(a.ID, b.ID) })
	items := make([]listItem, len(ts))
	for i, t := range ts {
		items[i] = listItem{id: t.ID, raw: encoded(scheduleJSON(t))}
	}
	k.serveList(w, r, items, false)
}

func (k *Fake) addGroupUser(w http.ResponseWriter, r *http.Request) {
	g := k.group(w, r)
	if g == nil {
		return
	}
	var body struct {
		UserID string `json:"user_id"`
	}
	if json.NewDecoder(r.Body).Decode(&body) != nil || body.UserID == "" {
		k.writeError(w, 400, "1101", "The user_id field is required.")
		return
	}
	u := k.byPlat[idKey(body.UserID)]
	if u == nil {
		// Salto wants the platform user id; a site-user id is "not found".
		k.writeError(w, 404, "2202", "User not found")
		return
	}
	if !k.visible(u) {
		// What was measured for a guest Salto does not see yet.
		k.writeError(w, 403, "2203", "User does not have permission to access this resource")
		return
	}
	if !slices.Contains(g.Users, u.User.ID) {
		g.Users = append(g.Users, u.User.ID)
	}
	writeJSON(w, 201, map[string]any{"id": u.User.ID})
}

func (k *Fake) removeGroupUser(w http.ResponseWriter, r *http.Request) {
	g := k.group(w, r)
	if g == nil {
		return
	}
	uid := r.PathValue("uid")
	same := func(p string) bool { return strings.EqualFold(p, uid) }
	if !slices.ContainsFunc(g.Users, same) {
		k.writeError(w, 404, "2202", "User not found")
		return
	}
	g.Users = slices.DeleteFunc(g.Users, same)
	w.WriteHeader(http.StatusNoContent)
}

func (k *Fake) listUsers(w http.ResponseWriter, r *http.Request) {
	users := k.users
	if k.opt.CreateLag > 0 {
		users = slices.DeleteFunc(slices.Clone(users), func(u *user) bool { return !k.visible(u) })
	}
	k.serveListN(w, r, len(users), func(i int) listItem {
		u := users[i]
		return listItem{id: u.ID, sort: u.User.LastName, raw: u.json}
	}, false)
}

// siteUser finds the user the path names, or answers 404 2202 (also for a
// user the service does not see yet).
func (k *Fake) siteUser(w http.ResponseWriter, r *http.Request) *user {
	u := k.byID[idKey(r.PathValue("id"))]
	if u == nil || !k.visible(u) {
		k.writeError(w, 404, "2202", "User not found")
		return nil
	}
	return u
}

func (k *Fake) getUser(w http.ResponseWriter, r *http.Request) {
	u := k.siteUser(w, r)
	if u == nil {
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(200)
	w.Write(u.json())
}

// newUser creates a user, suspended when the seats are used up (Salto answers
// 201 and says nothing else).
func (k *Fake) newUser(first, last, email, alias, role string, usePIN bool, expires *string) *user {
	k.seq++
	state := "subscribed"
	if k.opt.SeatLimit > 0 && k.subscribedCount() >= k.opt.SeatLimit {
		state = "suspended"
	}
	u := &user{role: role, SiteUser: saltoks.SiteUser{ID: newUUID(), Alias: alias, SubscriptionState: state, ExpiresAt: expires, UsePIN: &usePIN,
		User: saltoks.PlatformUser{ID: newUUID(), FirstName: first, LastName: last}}}
	if email != "" {
		u.User.Email = &email
	}
	if k.opt.CreateLag > 0 {
		u.visibleAt = k.clock().Add(k.opt.CreateLag)
	}
	k.byID[idKey(u.ID)], k.byPlat[idKey(u.User.ID)] = u, u
	k.users = append(k.users, u)
	k.sortUsers()
	return u
}

func (k *Fake) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Email     string `json:"email"`
		Alias     string `json:"alias"`
		UsePIN    *bool  `json:"use_pin"`
		Blocked   bool   `json:"blocked"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		k.writeError(w, 400, "1101", "The request body is invalid")
		return
	}
	if body.FirstName == "" && body.LastName == "" {
		k.writeError(w, 400, "1101", "The first_name field is required.")
		return
	}
	u := k.newUser(body.FirstName, body.LastName, body.Email, body.Alias, "site_user", body.UsePIN != nil && *body.UsePIN, nil)
	u.Blocked = body.Blocked
	u.touch()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(201)
	w.Write(u.json())
}

func (k *Fake) createGuest(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Alias     string  `json:"alias"`
		ExpiresAt *string `json:"expires_at"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		k.writeError(w, 400, "1101", "The request body is invalid")
		return
	}
	if body.ExpiresAt != nil {
		if _, err := time.Parse(time.RFC3339, *body.ExpiresAt); err != nil {
			k.writeError(w, 400, "1101", "The expires_at field is invalid.")
			return
		}
	}
	u := k.newUser("", "", "", body.Alias, "site_guest", false, body.ExpiresAt)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(201)
	w.Write(u.json())
}

func (k *Fake) patchUser(w http.ResponseWriter, r *http.Request) {
	u := k.siteUser(w, r)
	if u == nil {
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		k.writeError(w, 400, "1101", "The request body is invalid")
		return
	}
	for key, raw := range body {
		var b bool
		switch key {
		case "use_pin", "blocked":
			if json.Unmarshal(raw, &b) != nil {
				k.writeError(w, 400, "1101", "The "+key+" field is invalid.")
				return
			}
			u.touch()
			if key == "use_pin" {
				u.UsePIN = &b
			} else {
				u.Blocked = b
			}
		case "alias":
			json.Unmarshal(raw, &u.Alias)
			u.touch()
		default:
			k.writeError(w, 400, "1101", "The field "+key+" cannot be changed.")
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(200)
	w.Write(u.json())
}

func (k *Fake) deleteUser(w http.ResponseWriter, r *http.Request) {
	u := k.siteUser(w, r)
	if u == nil {
		return
	}
	k.removeUser(u.ID)
	w.WriteHeader(http.StatusAccepted)
}

func (k *Fake) putPIN(w http.ResponseWriter, r *http.Request) {
	u := k.siteUser(w, r)
	if u == nil {
		return
	}
	if u.UsePIN != nil && !*u.UsePIN {
		k.writeError(w, 400, "1101", "PIN is not enabled for this user.")
		return
	}
	pin := make([]byte, k.opt.PINLength)
	for i := range pin {
		n, _ := rand.Int(rand.Reader, big.NewInt(10))
		pin[i] = byte('0' + n.Int64())
	}
	k.pins[u.ID] = string(pin)
	if k.opt.PINAsText {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(200)
		w.Write(jsonMarshal(string(pin)))
		return
	}
	writeJSON(w, 200, string(pin))
}

func (k *Fake) getKeys(w http.ResponseWriter, r *http.Request) {
	u := k.siteUser(w, r)
	if u == nil {
		return
	}
	items := []any{}
	if k.pins[u.ID] != "" {
		items = append(items, map[string]any{"type": "pin", "key_identifier": "pin", "expiry_date": nil, "offline_access": false})
	}
	writeJSON(w, 200, map[string]any{"items": items, "next_page_link": nil, "count": nil})
}

func (k *Fake) patchSubscription(w http.ResponseWriter, r *http.Request) {
	u := k.siteUser(w, r)
	if u == nil {
		return
	}
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		k.writeError(w, 400, "1101", "The request body is invalid")
		return
	}
	state, ok := body["state"]
	if !ok || (state != "subscribed" && state != "suspended") {
		k.writeError(w, 400, "1101", "The state field is required.")
		return
	}
	if state == "subscribed" && u.SubscriptionState != "subscribed" && k.opt.SeatLimit > 0 && k.subscribedCount() >= k.opt.SeatLimit {
		k.writeError(w, 400, "1101", "The subscription user limit has been reached.")
		return
	}
	u.SubscriptionState = state
	u.touch()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(200)
	w.Write(u.json())
}

// --- OData $filter (the subset integrators use) ---------------------------------

// parseFilter understands `path eq literal` clauses joined by `and`, where path
// may be nested (user/email) and literal is 'text', a number, true, false or
// null.
func parseFilter(f string) (func(map[string]any) bool, error) {
	var preds []func(map[string]any) bool
	for _, clause := range splitAnd(f) {
		field, lit, ok := strings.Cut(strings.TrimSpace(clause), " eq ")
		if !ok {
			return nil, fmt.Errorf("unsupported filter %q", clause)
		}
		field, lit = strings.TrimSpace(field), strings.TrimSpace(lit)
		var want any
		switch {
		case len(lit) >= 2 && lit[0] == '\'' && lit[len(lit)-1] == '\'':
			want = strings.ReplaceAll(lit[1:len(lit)-1], "''", "'")
		case lit == "true", lit == "false":
			want = lit == "true"
		case lit == "null":
			want = nil
		default:
			n, err := strconv.ParseFloat(lit, 64)
			if err != nil {
				return nil, fmt.Errorf("unsupported literal %q", lit)
			}
			want = n
		}
		path := strings.Split(field, "/")
		preds = append(preds, func(obj map[string]any) bool {
			var cur any = obj
			for _, p := range path {
				m, ok := cur.(map[string]any)
				if !ok {
					return false
				}
				cur = m[p]
			}
			if n, ok := cur.(int); ok {
				cur = float64(n)
			}
			return cur == want
		})
	}
	return func(obj map[string]any) bool {
		for _, p := range preds {
			if !p(obj) {
				return false
			}
		}
		return true
	}, nil
}

// splitAnd splits on " and " outside quotes.
func splitAnd(s string) []string {
	var out []string
	inQuote := false
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			inQuote = !inQuote
		}
		if !inQuote && strings.HasPrefix(s[i:], " and ") {
			out = append(out, s[start:i])
			start = i + 5
			i += 4
		}
	}
	return append(out, s[start:])
}
