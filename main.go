// Command trawl fetches lists of URLs in bulk and writes one record per URL.
package main

import (
	"os"

	"github.com/trawl-dev/trawl/cmd"
)

func main() {
	os.Exit(cmd.Main())
}
