package desfire

// SetSession installs a session directly, for replaying published traces
// whose session keys are given without the authentication that made them.
func (c *Card) SetSession(s interface{ KeyNo() byte }) {
	switch s := s.(type) {
	case *EV1Session:
		c.sess = s
	case *EV2Session:
		c.sess = s
	}
}
