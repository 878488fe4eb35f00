//go:build !amd64 && !arm64

package storage

const canPrefetch = false

func prefetch(uintptr) {}
