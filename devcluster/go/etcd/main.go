// Command etcd is upstream etcd's server main, built from the Go module proxy because
// Debian's etcd is older than what the Kubernetes release in this repo supports.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
