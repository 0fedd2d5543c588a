// Package goAMF3 stands in for github.com/breign/goAMF3, which Open OSCAR
// Server v0.22.0 requires but the Go module proxy does not serve. Only the
// server's Flash Web AIM endpoints call it, and no IMtegrity test uses them.
package goAMF3

// EncodeAMF3 returns the AMF3 null marker (0x01) whatever the value.
func EncodeAMF3(value interface{}) []byte {
	return []byte{0x01}
}
