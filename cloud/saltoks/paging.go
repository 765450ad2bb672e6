package saltoks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// Page is one list answer, decoded from either the envelope
// {items, next_page_link, count} or the bare JSON array some endpoints send.
type Page struct {
	Items    []json.RawMessage
	NextLink string
	Count    *int
	Bare     bool // the answer was a bare array (no paging information)
}

// DecodePage reads a list answer.
func DecodePage(data []byte) (Page, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return Page{}, errors.New("empty body where a list was expected")
	}
	switch data[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return Page{}, err
		}
		return Page{Items: items, Bare: true}, nil
	case '{':
		var env struct {
			Items    *[]json.RawMessage `json:"items"`
			NextLink *string            `json:"next_page_link"`
			Count    *json.Number       `json:"count"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			return Page{}, err
		}
		if env.Items == nil {
			return Page{}, errors.New(`list envelope without "items"`)
		}
		p := Page{Items: *env.Items}
		if env.NextLink != nil {
			p.NextLink = *env.NextLink
		}
		if env.Count != nil {
			n, err := strconv.Atoi(env.Count.String())
			if err != nil || n < 0 {
				return Page{}, fmt.Errorf("list count %q is not a count", env.Count.String())
			}
			p.Count = &n
		}
		return p, nil
	}
	return Page{}, errors.New("a list must be a JSON object or array")
}

// listQuery are the OData options of one list call.
type listQuery struct {
	filter  string
	orderBy string // default "id": skip paging needs a stable order
	extra   url.Values
}

// pageOf is one decoded list answer.
type pageOf[T any] struct {
	items []T
	next  string
	count *int
	bare  bool
}

// decodePageOf decodes a list answer straight into T in one pass (the
// envelope, or a bare array).
func decodePageOf[T any](data []byte) (pageOf[T], error) {
	var p pageOf[T]
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return p, errors.New("empty body where a list was expected")
	}
	switch data[0] {
	case '[':
		p.bare = true
		return p, json.Unmarshal(data, &p.items)
	case '{':
		var env struct {
			Items    *[]T         `json:"items"`
			NextLink *string      `json:"next_page_link"`
			Count    *json.Number `json:"count"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			return p, err
		}
		if env.Items == nil {
			return p, errors.New(`list envelope without "items"`)
		}
		p.items = *env.Items
		if env.NextLink != nil {
			p.next = *env.NextLink
		}
		if env.Count != nil {
			n, err := strconv.Atoi(env.Count.String())
			if err != nil || n < 0 {
				return p, fmt.Errorf("list count %q is not a count", env.Count.String())
			}
			p.count = &n
		}
		return p, nil
	}
	return p, errors.New("a list must be a JSON object or array")
}

// fetchPage requests one page.
func fetchPage[T any](ctx context.Context, c *Client, path string, lq listQuery, id func(*T) string, skip, top int) (pageOf[T], error) {
	q := url.Values{}
	for k, v := range lq.extra {
		q[k] = v
	}
	q.Set("$top", strconv.Itoa(top))
	q.Set("$skip", strconv.Itoa(skip))
	q.Set("$count", "true")
	ob := lq.orderBy
	if ob == "" {
		ob = "id"
	}
	q.Set("$orderby", ob)
	if lq.filter != "" {
		q.Set("$filter", lq.filter)
	}
	var pg pageOf[T]
	req := request{method: "GET", path: path, query: q, idempotent: true}
	req.decode = func(r *response) error {
		var err error
		if pg, err = decodePageOf[T](r.body); err != nil {
			return &DecodeError{Method: req.method, Path: path, Err: err}
		}
		for i := range pg.items {
			if id(&pg.items[i]) == "" {
				return &DecodeError{Method: req.method, Path: path, Err: fmt.Errorf("item %d has no id", skip+i)}
			}
		}
		return nil
	}
	_, err := c.do(ctx, req)
	return pg, err
}

type fetched[T any] struct {
	pg  pageOf[T]
	err error
}

// listAll reads every page of a list and hands each page's new items to fn,
// in list order.
//
// Paging uses $top/$skip with $orderby and overlaps pages by one item: each
// page must start with the item that ended the previous one. When the list
// changes between two requests (an item added or removed before a page's
// offset) the overlap no longer matches and the read fails with an
// InconsistentError instead of silently skipping or repeating an item. A
// changing $count and duplicate ids are caught the same way. next_page_link is
// read as "there is more" (also when the server caps the page size below
// $top), but not followed blindly: it could point at another host, and the
// bearer token is only ever sent to the configured API URL.
//
// Once the first page told the count, the offsets of all pages are known and
// the rest are requested side by side (within the client's in-flight bound),
// since at internet distance each request costs a round trip; the overlap,
// count and duplicate checks are the same, made in list order. A list without
// a count (a bare array) is read page after page, the next page requested
// while fn works on the current one.
func listAll[T any](ctx context.Context, c *Client, path string, lq listQuery, id func(*T) string, fn func([]T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	top := c.cfg.PageSize
	first, err := fetchPage(ctx, c, path, lq, id, 0, top)
	if err != nil {
		return err
	}
	r := &pageReader[T]{path: path, id: id, fn: fn, seen: map[string]struct{}{}}
	if n := len(first.items); first.count != nil && !first.bare && n >= 2 && n < *first.count {
		return r.parallel(ctx, cancel, c, lq, first, top)
	}
	return r.sequential(ctx, cancel, c, lq, first, top)
}

// pagesAhead bounds the pages of one list read side by side. Four pages of
// 1,000 users per round trip read a 100,000-user site in 25 round trips,
// while every page held costs about a megabyte until it is checked; the
// rest of the in-flight bound is left to the access groups read meanwhile.
const pagesAhead = 4

// pageReader checks pages in list order and hands their new items on.
type pageReader[T any] struct {
	path     string
	id       func(*T) string
	fn       func([]T) error
	skip     int // offset of the page being checked
	prevLast string
	count    *int
	seen     map[string]struct{}
}

// check verifies one page (at offset r.skip) against the previous ones and
// returns its new items.
func (r *pageReader[T]) check(pg pageOf[T]) ([]T, error) {
	items := pg.items
	fresh := items
	if r.skip > 0 {
		if len(items) == 0 || r.id(&items[0]) != r.prevLast {
			return nil, &InconsistentError{Path: r.path, Reason: fmt.Sprintf("the page at offset %d does not start with the item that ended the previous page", r.skip)}
		}
		fresh = items[1:]
	}
	if pg.count != nil {
		if r.count != nil && *r.count != *pg.count {
			return nil, &InconsistentError{Path: r.path, Reason: fmt.Sprintf("the count moved from %d to %d", *r.count, *pg.count)}
		}
		r.count = pg.count
	}
	for i := range fresh {
		k := r.id(&fresh[i])
		if _, dup := r.seen[k]; dup {
			return nil, &InconsistentError{Path: r.path, Reason: fmt.Sprintf("item %s appeared twice", k)}
		}
		r.seen[k] = struct{}{}
	}
	if len(items) > 0 {
		r.prevLast = r.id(&items[len(items)-1])
	}
	return fresh, nil
}

// done checks the whole list against its count.
func (r *pageReader[T]) done() error {
	if r.count != nil && len(r.seen) != *r.count {
		return &InconsistentError{Path: r.path, Reason: fmt.Sprintf("read %d items but the list counts %d", len(r.seen), *r.count)}
	}
	return nil
}

func (r *pageReader[T]) sequential(ctx context.Context, cancel context.CancelFunc, c *Client, lq listQuery, pg pageOf[T], top int) error {
	for {
		fresh, err := r.check(pg)
		if err != nil {
			return err
		}
		n := len(pg.items)
		more := len(fresh) > 0 && (pg.next != "" || (n >= top && !(pg.bare && n > top)))
		var ahead chan fetched[T]
		if more {
			r.skip += n - 1
			ahead = make(chan fetched[T], 1)
			go func(skip int) {
				p, err := fetchPage(ctx, c, r.path, lq, r.id, skip, top)
				ahead <- fetched[T]{p, err}
			}(r.skip)
		}
		if len(fresh) > 0 {
			if err := r.fn(fresh); err != nil {
				if ahead != nil {
					cancel()
					<-ahead
				}
				return err
			}
		}
		if !more {
			return r.done()
		}
		f := <-ahead
		if f.err != nil {
			return f.err
		}
		pg = f.pg
	}
}

// parallel reads a list whose first page gave its count. The server's page
// size is the first page's length n (it may cap $top); page k starts at
// k*(n-1). At most pagesAhead pages are requested or waiting to be checked,
// which bounds the memory held.
func (r *pageReader[T]) parallel(ctx context.Context, cancel context.CancelFunc, c *Client, lq listQuery, first pageOf[T], top int) error {
	n, total := len(first.items), *first.count
	stride := n - 1
	last := (total - n + stride - 1) / stride // pages after the first: 1..last
	results := make([]chan fetched[T], last+1)
	launched := 0
	launch := func() {
		launched++
		ch := make(chan fetched[T], 1)
		results[launched] = ch
		go func(skip int) {
			p, err := fetchPage(ctx, c, r.path, lq, r.id, skip, top)
			ch <- fetched[T]{p, err}
		}(launched * stride)
	}
	// Whatever ends the read, stop and wait for the requests still running,
	// so none outlives the call.
	defer func() {
		cancel()
		for k := 1; k <= launched; k++ {
			if results[k] != nil {
				<-results[k]
			}
		}
	}()
	window := min(pagesAhead, c.cfg.MaxInFlight)
	for launched < last && launched < window {
		launch()
	}
	pg := first
	for k := 0; ; k++ {
		if k > 0 {
			f := <-results[k]
			results[k] = nil
			if launched < last {
				launch()
			}
			if f.err != nil {
				return f.err
			}
			pg = f.pg
			r.skip = k * stride
			// Every page but the last is as long as the first; a shorter one
			// means the list shrank (or the server changed its page size).
			if want := min(n, total-r.skip); len(pg.items) != want {
				return &InconsistentError{Path: r.path, Reason: fmt.Sprintf("the page at offset %d has %d items, not %d", r.skip, len(pg.items), want)}
			}
		}
		fresh, err := r.check(pg)
		if err != nil {
			return err
		}
		if len(fresh) > 0 {
			if err := r.fn(fresh); err != nil {
				return err
			}
		}
		if k == last {
			return r.done()
		}
	}
}

// collect gathers a whole list into a slice (for small lists).
func collect[T any](ctx context.Context, c *Client, path string, lq listQuery, id func(*T) string) ([]T, error) {
	var out []T
	err := listAll(ctx, c, path, lq, id, func(p []T) error {
		out = append(out, p...)
		return nil
	})
	return out, err
}
