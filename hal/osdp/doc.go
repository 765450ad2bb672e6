// Package osdp is an OSDP v2.2 (IEC 60839-11-5) Control Panel: it drives
// OSDP readers (PDs) on an RS-485 bus with AES-128 Secure Channel,
// supervises them and reports what they read.
//
// # Using it
//
// One Bus per serial line. OpenSerial opens the device at 8N1 (9600–230400
// baud); NewBus takes it with the readers on that line (addresses 0–126,
// each with its own Secure Channel Base Key) and Run polls them in turn
// until its context ends:
//
//	port, err := osdp.OpenSerial("/dev/ttyUSB0", 115200)
//	bus, err := osdp.NewBus(osdp.Config{
//		Port: port, Baud: 115200,
//		Readers: []osdp.ReaderConfig{{Name: "front", Addr: 1, Key: scbk}},
//		Report:  func(r osdp.Report) { reports <- r },
//	})
//	go bus.Run(ctx)
//
// Reports arrive in order from the Run goroutine: ReportCard (osdp_RAW: bit
// count and bits, MSB first, not decoded here — run them through
// hal/wiegand; osdp_FMT: characters), ReportKeypad (digits, '*', '#'),
// ReportTamper and ReportPower (LSTATR changes), ReportIdentity (PDID and
// PDCAP), ReportOnline, ReportOffline with a Reason (timeout, wrong_key,
// mac_failure, no_secure_channel, no_key, nak, protocol_error) and ReportNAK
// for a refused command. Status returns a snapshot per reader (online,
// secure, default key, identity, tamper/power, counters) for status,
// telemetry and doctor; ReceivedBytes tells a silent line from a garbled one.
//
// LED, Buzzer, Output and Feedback (grant, deny, awaiting PIN, alarm, idle
// patterns) queue commands for the poll loop and return at once; a full
// queue or an offline reader is an error, never a wait. SetComm (COMSET)
// and Rekey (KEYSET) wait for the reader's answer.
//
// # Protocol behaviour
//
//   - Frames: SOM, address, length, CTRL (sequence, CRC-16 or checksum,
//     security block), optional 0xFF mark byte first; CRC-16/AUG-CCITT as
//     in the spec's Annex E. A reader that answers with checksums gets
//     checksums.
//   - Sequence numbers: 0 restarts the link (sent after start-up and after
//     any loss), then 1, 2, 3, 1, …; a command without a valid reply is sent
//     again, byte for byte, with the same number, so a reader that did
//     answer repeats its reply and no MAC step is lost. osdp_BUSY gets the
//     same frame again 50 ms later.
//   - Timing: at least two character times of idle line before sending;
//     a reply must start within 200 ms; a gap of 20 ms inside a frame drops
//     it. A reader is declared offline after 8 s without a valid reply (the
//     specification's limit) and then probed with back-off (0.5 s to 8 s),
//     so a dead reader costs the others little bus time. Readers that
//     answer are served before silent ones (two commands in a row without
//     a reply), which take their turns longest overdue first and at least
//     each second: readers built on libosdp end their session after 0.8 s
//     without a command.
//   - Secure Channel (required unless a reader's Secure is SecureOff):
//     CHLNG → CCRYPT → SCRYPT → RMAC_I; S-ENC, S-MAC1, S-MAC2 from the
//     reader's SCBK and the CP's random challenge (crypto/rand); both
//     cryptograms and the initial R-MAC are verified; afterwards every
//     message carries a MAC chained to the previous one and data blocks are
//     AES-CBC encrypted with 0x80 padding. A reader whose PDCAP lacks Secure
//     Channel, that refuses the handshake or holds another key is refused
//     (ReportOffline, ErrRefused) and retried with back-off; a MAC failure
//     or a plaintext reply inside a session drops the session, reports the
//     reader offline and re-establishes it: online again only with a new
//     session. One exception: a reader without a reply cache (libosdp)
//     answers NAK 6 to a command repeated after a lost reply; its session
//     is set up again without an offline report (SessionRestarts), at most
//     once a minute.
//   - SCBK-D, the published install key, is used only for a reader
//     configured with Install and during Bus.Install. A reader without a
//     key of its own (Uninstalled) is identified and refused (no_key) until
//     Bus.Install moves it from SCBK-D to its key, on the running bus: the
//     key goes with KEYSET over the SCBK-D session and is proven by a new
//     handshake; cards read under SCBK-D are dropped. Bus.Rekey changes an
//     installed reader's key the same way. The caller generates the key
//     (crypto/rand) and stores it before.
//
// # Wiring
//
// RS-485 is one twisted pair (A/B, also labelled D−/D+ or −/+ the other
// way round by some vendors) plus a common ground, daisy-chained from the
// gateway through every reader — no stars. Terminate both ends of the
// chain with 120 Ω (many adapters and readers have a jumper); bias
// resistors belong on one device only, usually the gateway's adapter. The
// transceiver's direction is switched by the adapter itself
// (DirectionAuto: USB adapters, most HATs, the kernel's RS-485 mode), by
// the UART's RTS line (DirectionRTS), or by a GPIO wired to DE and /RE
// (DirectionPin, active high unless ActiveLow). Swapped A/B shows as every
// reader timing out; a wrong baud as garbled replies (CheckErrors in the
// status); a wrong key as ReasonWrongKey.
package osdp
