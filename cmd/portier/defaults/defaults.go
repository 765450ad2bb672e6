// Package defaults holds what portier uses when it is given no config: the
// demo gateway's configuration (doors on a simulated board) and the demo
// coworking site loaded into its empty cache.
package defaults

import _ "embed" // the files below

// Config is the embedded default configuration (portier.yaml here).
//
//go:embed portier.yaml
var Config []byte

// DemoSite is the demo site snapshot (demo-site.json here), in the format
// of docs/snapshot-format.md.
//
//go:embed demo-site.json
var DemoSite []byte

// DemoDESFireKeys are the demo site's DESFire keys (demo-desfire.keys
// here): PUBLIC, for the demo only; cards issued with them can be forged.
//
//go:embed demo-desfire.keys
var DemoDESFireKeys []byte
