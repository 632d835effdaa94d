// Command ari-floor is the minimal raw ARI client that callflow-load
// --floor measures callflow against. It is a yardstick, not a product.
package main

import (
	"os"

	"github.com/callflow/callflow/internal/loadtest/floor"
)

func main() { os.Exit(floor.Main(os.Args[1:])) }
