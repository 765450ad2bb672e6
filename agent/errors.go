package agent

import "errors"

// ErrNotFound is returned by stores when a looked-up object does not exist.
var ErrNotFound = errors.New("not found")
