// Package fleet is the fleet harness of docs/fleet.md: many gateways on a
// clustered broker (RabbitMQ, three nodes on loopback, cluster.sh), nodes
// killed and restarted, and a consumer that checks that nothing was lost.
// The harness is test code behind the fleet build tag (`make fleet`,
// `make fleet-ci`); the package itself holds only Tally, the consumer's
// bookkeeping (de-duplication by event id, order per gateway), so it is
// unit-tested with the rest. Nothing here is linked into portier.
package fleet
