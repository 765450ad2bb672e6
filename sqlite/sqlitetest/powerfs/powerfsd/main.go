// Command powerfsd serves a powerfs mount for a test (see package powerfs):
// it is started by powerfs.New and talks to it on standard input and output.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/portier-io/portier/sqlite/sqlitetest/powerfs"
)

func main() {
	backing := flag.String("backing", "", "backing directory")
	mnt := flag.String("mount", "", "mount point")
	options := flag.String("options", "{}", "powerfs.Options as JSON")
	flag.Parse()
	var opt powerfs.Options
	if err := json.Unmarshal([]byte(*options), &opt); err != nil || *backing == "" || *mnt == "" {
		fmt.Fprintln(os.Stderr, "usage: powerfsd -backing DIR -mount DIR [-options JSON]")
		os.Exit(2)
	}
	if err := powerfs.Serve(os.Stdin, os.Stdout, *backing, *mnt, opt); err != nil {
		fmt.Fprintln(os.Stderr, "powerfsd:", err)
		os.Exit(1)
	}
}
