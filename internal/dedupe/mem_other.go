//go:build !unix

package dedupe

// mapMemory cannot map memory on this system: tables stay on the Go heap.
func mapMemory(int) []byte { return nil }

func unmapMemory([]byte) {}
