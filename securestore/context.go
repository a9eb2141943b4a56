package securestore

import "context"

type writeRequiredKey struct{}

// WithWriteRequired marks ctx for a command whose point is the write of the rotated
// refresh token (renew): a store that may skip writes (the Key Vault store writes only
// when its version is old enough) writes anyway, and a failed write fails the command
// instead of being a warning.
func WithWriteRequired(ctx context.Context) context.Context {
	return context.WithValue(ctx, writeRequiredKey{}, true)
}

// WriteRequired reports whether ctx was marked with WithWriteRequired.
func WriteRequired(ctx context.Context) bool {
	v, _ := ctx.Value(writeRequiredKey{}).(bool)
	return v
}
