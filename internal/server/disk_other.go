//go:build !unix

package server

import "errors"

func diskSpace(dir string) (free, total uint64, err error) {
	return 0, 0, errors.New("free space unknown on this system")
}
