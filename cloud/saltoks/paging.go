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
func listAll[T any](ctx context.Context, c *Client, path string, lq listQuery, id func(*T) string, fn func([]T) error) error {
	top := c.cfg.PageSize
	skip := 0
	var prevLast string
	var count *int
	seen := map[string]struct{}{}
	for {
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
		var pg Page
		var items []T
		req := request{method: "GET", path: path, query: q, idempotent: true}
		req.decode = func(r *response) error {
			var err error
			if pg, err = DecodePage(r.body); err != nil {
				return &DecodeError{Method: req.method, Path: path, Err: err}
			}
			items = make([]T, len(pg.Items))
			for i, raw := range pg.Items {
				if err := json.Unmarshal(raw, &items[i]); err != nil {
					return &DecodeError{Method: req.method, Path: path, Err: fmt.Errorf("item %d: %w", skip+i, err)}
				}
				if id(&items[i]) == "" {
					return &DecodeError{Method: req.method, Path: path, Err: fmt.Errorf("item %d has no id", skip+i)}
				}
			}
			return nil
		}
		if _, err := c.do(ctx, req); err != nil {
			return err
		}
		n := len(items)
		fresh := items
		if skip > 0 {
			if n == 0 || id(&items[0]) != prevLast {
				return &InconsistentError{Path: path, Reason: fmt.Sprintf("the page at offset %d does not start with the item that ended the previous page", skip)}
			}
			fresh = items[1:]
		}
		if pg.Count != nil {
			if count != nil && *count != *pg.Count {
				return &InconsistentError{Path: path, Reason: fmt.Sprintf("the count moved from %d to %d", *count, *pg.Count)}
			}
			count = pg.Count
		}
		for i := range fresh {
			k := id(&fresh[i])
			if _, dup := seen[k]; dup {
				return &InconsistentError{Path: path, Reason: fmt.Sprintf("item %s appeared twice", k)}
			}
			seen[k] = struct{}{}
		}
		if len(fresh) > 0 {
			if err := fn(fresh); err != nil {
				return err
			}
		}
		more := pg.NextLink != "" || (n >= top && !(pg.Bare && n > top))
		if !more || len(fresh) == 0 {
			break
		}
		prevLast = id(&items[n-1])
		skip += n - 1
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
