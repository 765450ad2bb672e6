// Package hal is Portier's hardware layer: readers, keypads, relays and inputs
// built on periph.io/x/conn interfaces, and the one place (host.go) that
// turns a validated wiring configuration into devices on periph's host
// drivers.
//
// # Packages
//
//   - hal/wiegand: D0/D1 frame assembly and data-driven card formats.
//   - hal/mfrc522: MFRC522 RFID driver; hal/mfrc522/mfrc522sim models the chip;
//     hal/mfrc522/iso14443 is ISO/IEC 14443-4 on top of it and
//     hal/mfrc522/cardcheck the per-tap fingerprint and DESFire checks.
//   - hal/desfire: MIFARE DESFire client (any ISO/IEC 14443-4 transport);
//     hal/desfire/desfiresim models the card.
//   - hal/keypad: matrix keypad scanner.
//   - hal/osdp: OSDP v2.2 Control Panel on RS-485 with Secure Channel;
//     hal/osdp/osdpsim simulates readers.
//   - hal/doorio: relay/LED/buzzer outputs and debounced inputs.
//   - hal/sim: a simulated board for demos, tests and dry runs.
//   - hal/simtime: simulated time for simulators and tests.
//
// Device packages import only periph.io/x/conn and the standard library;
// this package and hal/sim translate their readings into agent types.
//
// # The board the door runtime consumes
//
// A Board (OpenPeriph, or sim.New for `driver: sim`) is all of a gateway's
// door hardware. OpenPeriph returns a DeviceBoard, which NewDeviceBoard can
// also assemble from devices opened elsewhere (an I/O expander's pins, test
// simulators). The runtime:
//
//   - calls Run(ctx, emit) once; every device runs in its own goroutine and
//     emit receives Events: EventCredential (agent.CardUID from an MFRC522,
//     agent.CardWiegand from a Wiegand reader), EventKey (one keypad key,
//     from a matrix keypad or Wiegand keypad bursts; PIN collection is the
//     runtime's job), EventInput (debounced door contact, exit button,
//     tamper; Active = open/pressed/triggered) and EventFault (a rejected
//     Wiegand frame, a reader chip error; the device restarts itself);
//   - calls Set(door, Relay|GreenLED|RedLED|Buzzer, on) to drive outputs;
//     the relay's timing belongs to the runtime, with its own deadline;
//   - calls Halt to put every output in its safe state, and Close at exit.
//
// Outputs are in their safe state from the moment the board opens, before
// any reader runs.
//
// Config.Validate(doorIDs) checks the wiring section of portier.yaml;
// Config.Wires lists every connection for wiring pictures; SelfTest runs the
// installer's hardware checks on a real gateway.
package hal
