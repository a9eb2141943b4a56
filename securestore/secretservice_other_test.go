//go:build unix && !linux

package securestore

func stopSecretService() {}
