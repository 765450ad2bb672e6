//go:build !cgo

package sqlite

// Portier stores its cache in SQLite through github.com/mattn/go-sqlite3, which
// needs cgo. Without cgo the driver compiles to a stub that fails at run time,
// on the gateway, so refuse to build instead. Set CGO_ENABLED=1 (and, when
// cross-compiling, CC to the target's C compiler; see `make cross`).
var _ = portierNeedsCGOSetCGOEnabled1
