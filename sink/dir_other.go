//go:build !unix

package sink

// processAlive cannot tell on this system, so partial files are kept.
func processAlive(int) bool { return true }
