package osdp

import (
	"errors"
	"fmt"
	"time"
)

// ReportKind says what a Report is about.
type ReportKind uint8

// Report kinds.
const (
	ReportCard     ReportKind = iota + 1 // a card was read (Card)
	ReportKeypad                         // keys were pressed (Keys)
	ReportTamper                         // the tamper switch changed (Active)
	ReportPower                          // the power-fault flag changed (Active)
	ReportOnline                         // the reader is online (Secure says how)
	ReportOffline                        // the reader is offline or refused (Reason, NAK, Err)
	ReportIdentity                       // the reader identified itself (Identity, Caps)
	ReportNAK                            // the reader refused a command (NAK, Command)
)

func (k ReportKind) String() string {
	switch k {
	case ReportCard:
		return "card"
	case ReportKeypad:
		return "keypad"
	case ReportTamper:
		return "tamper"
	case ReportPower:
		return "power"
	case ReportOnline:
		return "online"
	case ReportOffline:
		return "offline"
	case ReportIdentity:
		return "identity"
	case ReportNAK:
		return "nak"
	}
	return fmt.Sprintf("ReportKind(%d)", uint8(k))
}

// Reason says why a reader is offline.
type Reason uint8

// Offline reasons.
const (
	ReasonNone            Reason = iota
	ReasonTimeout                // no valid reply for OfflineAfter
	ReasonWrongKey               // the Secure Channel handshake failed: the reader holds another key
	ReasonMAC                    // a message failed its MAC, or the reader dropped the session
	ReasonNoSecureChannel        // the reader cannot do Secure Channel and the config requires it
	ReasonNAK                    // the reader refused the handshake or lost our sequence (NAK says which)
	ReasonProtocol               // the reader answered out of protocol
	ReasonNoKey                  // Secure Channel is required and the reader has no key of its own yet
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonTimeout:
		return "timeout"
	case ReasonWrongKey:
		return "wrong_key"
	case ReasonMAC:
		return "mac_failure"
	case ReasonNoSecureChannel:
		return "no_secure_channel"
	case ReasonNAK:
		return "nak"
	case ReasonProtocol:
		return "protocol_error"
	case ReasonNoKey:
		return "no_key"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Errors of the bus API.
var (
	ErrUnknownReader   = errors.New("osdp: no reader at that address")
	ErrOffline         = errors.New("osdp: reader offline")
	ErrQueueFull       = errors.New("osdp: reader command queue full")
	ErrNoSecureChannel = errors.New("osdp: reader has no secure channel")
	ErrKeyNotProven    = errors.New("osdp: new key not proven")
	ErrNAK             = errors.New("osdp: reader refused the command")
	// ErrRefused is the error of ReportOffline for readers the bus will not
	// use as configured (no Secure Channel, wrong key); it wraps the cause.
	ErrRefused = errors.New("osdp: reader refused")
)

// Report is something that happened on a reader. Reports are delivered in
// order, from the bus goroutine.
type Report struct {
	Reader string // ReaderConfig.Name
	Addr   byte
	At     time.Time
	Kind   ReportKind

	Card     Card         // ReportCard
	Keys     string       // ReportKeypad: '0'–'9', '*', '#'
	Active   bool         // ReportTamper, ReportPower: fault present
	Secure   bool         // ReportOnline: over Secure Channel
	Reason   Reason       // ReportOffline
	NAK      NAKCode      // ReportOffline with ReasonNAK, ReportNAK
	Command  byte         // ReportNAK: the refused command code
	Err      error        // ReportOffline: detail
	Identity Identity     // ReportIdentity
	Caps     Capabilities // ReportIdentity
}

func (r Report) String() string {
	head := fmt.Sprintf("osdp %s@%d: %s", r.Reader, r.Addr, r.Kind)
	switch r.Kind {
	case ReportCard:
		if r.Card.Format == FormatASCII {
			return fmt.Sprintf("%s (%d characters)", head, len(r.Card.Text))
		}
		return fmt.Sprintf("%s (%d bits)", head, r.Card.Bits) // never the bits: they are a credential
	case ReportKeypad:
		return fmt.Sprintf("%s (%d keys)", head, len(r.Keys))
	case ReportTamper, ReportPower:
		return fmt.Sprintf("%s active=%v", head, r.Active)
	case ReportOnline:
		return fmt.Sprintf("%s secure=%v", head, r.Secure)
	case ReportOffline:
		return fmt.Sprintf("%s %s: %v", head, r.Reason, r.Err)
	case ReportIdentity:
		return fmt.Sprintf("%s %s", head, r.Identity)
	case ReportNAK:
		return fmt.Sprintf("%s command 0x%02X: %s", head, r.Command, r.NAK)
	}
	return head
}

// ReaderStatus is a snapshot of one reader for status, telemetry and doctor.
type ReaderStatus struct {
	Name       string
	Addr       byte
	Online     bool // answering, and over Secure Channel unless configured off
	Secure     bool // the session is a Secure Channel
	DefaultKey bool // the session uses SCBK-D (install mode)
	Since      time.Time
	Reason     Reason // why offline
	LastError  string // the last offline detail
	LastReply  time.Time

	Identity    *Identity // nil until the reader answered osdp_ID
	Caps        Capabilities
	Tamper      bool
	PowerFault  bool
	Polls       uint64 // exchanges with a valid reply
	Timeouts    uint64 // commands without a reply in time
	CheckErrors uint64 // replies with a bad CRC/checksum or garbled framing
	NAKs        uint64
	Busy        uint64
	Unknown     uint64 // replies ignored as unknown or unexpected
	// SessionRestarts counts secure sessions set up again, without an
	// offline report, after the reader dropped one over a lost reply.
	SessionRestarts uint64
}
