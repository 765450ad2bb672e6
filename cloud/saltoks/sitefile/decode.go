package sitefile

import "fmt"

// Decode parses a snapshot file into its JSON form without converting or
// validating it as a domain snapshot. Tools that serve the file in Salto's own
// shapes (the fake Salto KS) need this form.
func Decode(data []byte) (*File, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("snapshot is larger than %d MiB", MaxSize>>20)
	}
	return decode(data)
}
