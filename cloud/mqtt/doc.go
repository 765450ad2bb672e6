// Package mqtt is the gateway's MQTT link (MQTT 3.1.1 through
// github.com/eclipse/paho.mqtt.golang): it drains the durable event outbox to
// the broker, publishes the retained gateway status (with a Last Will), the
// retained state of every door and periodic telemetry, answers remote
// commands, and optionally announces the gateway to Home Assistant.
// docs/mqtt.md is the contract dashboards build against; docs/asyncapi.yaml
// is its machine-readable twin; TopicTable lists every topic and a test keeps
// the three in step.
//
// The daemon builds a Config and calls New, then Run(ctx) until shutdown:
//
//	link, err := mqtt.New(mqtt.Config{Brokers: …, Topics: mqtt.Topics{Site: …, Gateway: …},
//		Outbox: db, Meter: meter, Events: db, CommandLog: db, Doors: doors, …})
//	go link.Run(ctx)
//
// What the link consumes, each a small interface it owns (deps.go):
//
//   - Outbox: Pending, Ack, Appended — *sqlite.DB.
//   - OutboxMeter: OutboxDepth — an adapter over (*sqlite.DB).OutboxStats.
//   - agent.EventSink: Record — *sqlite.DB; command attempts and outbox
//     alarms are written as events and so reach the broker through the
//     outbox like everything else.
//   - CommandLog: ClaimCommand, FinishCommand, PruneCommands — *sqlite.DB.
//   - Doors: DoorIDs, DoorStatus, Unlock, Lockdown, OfficeMode,
//     ArmEnrolment — *agent.Doors, the gateway's door controllers.
//   - AccessCodes (optional): CreateAccessCode, DeleteAccessCode,
//     ListAccessCodes — an adapter over the access code service.
//   - Syncer (optional): SyncNow.
//   - TelemetrySource (optional): Telemetry — version, sync, cache counts,
//     clock trust.
//   - ClockGuard (optional): Untrusted — *agent.ClockGuard; asked for every
//     command to apply the clock policy.
//
// Delivery: paho's own reconnect is off (a token completed after one of its
// reconnects does not prove a PUBACK), so the link supervises connections
// itself with a jittered backoff and builds a new client for each. An event
// leaves the outbox only when its publish token completed without error on
// the connection that sent it. When a connection breaks, every unacknowledged
// event is sent again on the next one, oldest first: at-least-once, in seq
// order, de-duplicated by event_id.
//
// Run may be called once. An empty mqtt: section in the config means no
// link at all: events then simply stay in the outbox.
//
// Commands: see docs/mqtt.md. Every command is checked (size, retain flag,
// form, signature, expiry, id never seen, door), its id is recorded before
// anything acts, and it is answered pending → success | error.
package mqtt
