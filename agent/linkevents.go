package agent

// Event types of the defences of the remote-command link (the MQTT link
// records them; docs/mqtt.md and docs/door-runtime.md describe them).
const (
	// EventCommandsRefused sums up the refused commands of one cause
	// (Reason: expired, malformed, signature_invalid, …) in one interval,
	// beyond the first few of the interval that were recorded one by one as
	// command_rejected: Count says how many, SampleIDs names some of them. A
	// flood of junk so costs a handful of events, not one each.
	EventCommandsRefused EventType = "commands_refused"
	// EventPacketRefused: the broker sent a packet larger than the link
	// takes (a command can be at most a few KiB); it was not read, the
	// connection was dropped and is made again after the usual backoff.
	EventPacketRefused EventType = "mqtt_packet_refused"
)
