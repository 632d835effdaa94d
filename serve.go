package main

import (
	"errors"
	"io"
)

func cmdServe(args []string, stdout, stderr io.Writer) error {
	return errors.New("serve: not yet wired")
}
