package sink

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the file system holding root to disk, once, instead of
// an fsync per saved file.
func syncFS(root *os.Root) {
	f, err := root.Open(".")
	if err != nil {
		return
	}
	defer f.Close()
	_ = unix.Syncfs(int(f.Fd()))
}
