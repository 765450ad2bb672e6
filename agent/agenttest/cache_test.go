package agenttest_test

import (
	"testing"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

func TestCacheContract(t *testing.T) {
	agenttest.TestCredentialCache(t, func(t *testing.T, snap *agent.Snapshot) agent.CredentialCache {
		if err := snap.Validate(); err != nil {
			t.Fatal(err)
		}
		return agenttest.NewCache(snap)
	})
}

func TestCacheCardStoreContract(t *testing.T) {
	agenttest.TestCardStore(t, func(t *testing.T, snap *agent.Snapshot) agenttest.CardCache {
		return agenttest.NewCache(snap)
	})
}
