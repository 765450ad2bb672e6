package agent_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/agent"
)

func TestSystemClockAfterFunc(t *testing.T) {
	c := agent.NewSystemClock()
	fired := make(chan struct{})
	c.AfterFunc(0, func() { close(fired) })
	<-fired
	never := c.AfterFunc(1<<62, func() { t.Error("fired") })
	assert.True(t, never.Stop())
	assert.False(t, c.Now().IsZero())
}
