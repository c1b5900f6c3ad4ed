//go:build !unix

package lockfile

import (
	"errors"
	"os"
)

func tryLock(*os.File) error {
	return errors.New("--lock is only supported on Unix systems")
}
