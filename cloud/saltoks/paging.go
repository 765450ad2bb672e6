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

// listAll reads every page of a list and hands each page's new items to fn.
//
// Paging uses $top/$skip with $orderby and overlaps pages by one item: each
// page must start with the item that ended the previous one. When the list
// changes between two requests (an item added or removed before the current
// offset) the overlap no longer matches and the read fails with an
// InconsistentError instead of silently skipping or repeating an item. A
// changing $count and duplicate ids are caught the same way. next_page_link is
// read as "there is more" (also when the server caps the page size below
// $top), but not followed blindly: it could point at another host, and the
// bearer token is only ever sent to the configured API URL.
//
// The next page is requested while fn works on the current one.
func listAll[T any](ctx context.Context, c *Client, path string, lq listQuery, id func(*T) string, fn func([]T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	top := c.cfg.PageSize
	skip := 0
	var prevLast string
	var count *int
	seen := map[string]struct{}{}
	pg, err := fetchPage(ctx, c, path, lq, id, 0, top)
	for {
		if err != nil {
			return err
		}
		items := pg.items
		n := len(items)
		fresh := items
		if skip > 0 {
			if n == 0 || id(&items[0]) != prevLast {
				return &InconsistentError{Path: path, Reason: fmt.Sprintf("the page at offset %d does not start with the item that ended the previous page", skip)}
			}
			fresh = items[1:]
		}
		if pg.count != nil {
			if count != nil && *count != *pg.count {
				return &InconsistentError{Path: path, Reason: fmt.Sprintf("the count moved from %d to %d", *count, *pg.count)}
			}
			count = pg.count
		}
		for i := range fresh {
			k := id(&fresh[i])
			if _, dup := seen[k]; dup {
				return &InconsistentError{Path: path, Reason: fmt.Sprintf("item %s appeared twice", k)}
			}
			seen[k] = struct{}{}
		}
		more := len(fresh) > 0 && (pg.next != "" || (n >= top && !(pg.bare && n > top)))
		var ahead chan fetched[T]
		if more {
			prevLast = id(&items[n-1])
			skip += n - 1
			ahead = make(chan fetched[T], 1)
			go func(skip int) {
				p, err := fetchPage(ctx, c, path, lq, id, skip, top)
				ahead <- fetched[T]{p, err}
			}(skip)
		}
		if len(fresh) > 0 {
			if err := fn(fresh); err != nil {
				if ahead != nil {
					cancel()
					<-ahead
				}
				return err
			}
		}
		if !more {
			break
		}
		f := <-ahead
		pg, err = f.pg, f.err
	}
	if count != nil && len(seen) != *count {
		return &InconsistentError{Path: path, Reason: fmt.Sprintf("read %d items but the list counts %d", len(seen), *count)}
	}
	return nil
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
