package desfire

import (
	"errors"
	"fmt"
)

// Status is a DESFire status code: the first byte of a native answer, SW2
// of an ISO-wrapped one (SW1 0x91). Every Status is an error, so
// errors.Is(err, StatusAuthenticationError) tells why a card refused.
type Status byte

// Status codes (MIFARE DESFire EV1/EV2/EV3; the same values are listed by
// libfreefare and proxmark3).
const (
	StatusOK                  Status = 0x00
	StatusNoChanges           Status = 0x0C
	StatusOutOfEEPROM         Status = 0x0E
	StatusIllegalCommand      Status = 0x1C
	StatusIntegrityError      Status = 0x1E
	StatusNoSuchKey           Status = 0x40
	StatusLengthError         Status = 0x7E
	StatusSignature           Status = 0x90 // Read_Sig's success code
	StatusPermissionDenied    Status = 0x9D
	StatusParameterError      Status = 0x9E
	StatusApplicationNotFound Status = 0xA0
	StatusApplIntegrityError  Status = 0xA1
	StatusAuthenticationError Status = 0xAE
	StatusAdditionalFrame     Status = 0xAF
	StatusBoundaryError       Status = 0xBE
	StatusPICCIntegrityError  Status = 0xC1
	StatusCommandAborted      Status = 0xCA
	StatusPICCDisabled        Status = 0xCD
	StatusCountError          Status = 0xCE
	StatusDuplicateError      Status = 0xDE
	StatusEEPROMError         Status = 0xEE
	StatusFileNotFound        Status = 0xF0
	StatusFileIntegrityError  Status = 0xF1
)

var statusNames = map[Status]string{
	StatusOK:                  "ok",
	StatusNoChanges:           "no changes",
	StatusOutOfEEPROM:         "out of EEPROM",
	StatusIllegalCommand:      "illegal command",
	StatusIntegrityError:      "integrity error",
	StatusNoSuchKey:           "no such key",
	StatusLengthError:         "length error",
	StatusSignature:           "signature",
	StatusPermissionDenied:    "permission denied",
	StatusParameterError:      "parameter error",
	StatusApplicationNotFound: "application not found",
	StatusApplIntegrityError:  "application integrity error",
	StatusAuthenticationError: "authentication error",
	StatusAdditionalFrame:     "additional frame",
	StatusBoundaryError:       "boundary error",
	StatusPICCIntegrityError:  "PICC integrity error",
	StatusCommandAborted:      "command aborted",
	StatusPICCDisabled:        "PICC disabled",
	StatusCountError:          "count error",
	StatusDuplicateError:      "duplicate",
	StatusEEPROMError:         "EEPROM error",
	StatusFileNotFound:        "file not found",
	StatusFileIntegrityError:  "file integrity error",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("%s (0x%02X)", n, byte(s))
	}
	return fmt.Sprintf("status 0x%02X", byte(s))
}

func (s Status) Error() string { return "desfire: card answered " + s.String() }

// CommandError is a card's refusal of a command.
type CommandError struct {
	Cmd    byte
	Status Status
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("desfire: command 0x%02X: card answered %s", e.Cmd, e.Status)
}

// Unwrap returns the Status, for errors.Is.
func (e *CommandError) Unwrap() error { return e.Status }

// ISOError is an ISO/IEC 7816-4 status word that is not a DESFire one
// (SW1 other than 0x91), e.g. 6E00 from a card that is not a DESFire.
type ISOError struct {
	Cmd byte
	SW  uint16
}

func (e *ISOError) Error() string {
	return fmt.Sprintf("desfire: command 0x%02X: ISO status word %04X (not a DESFire answer)", e.Cmd, e.SW)
}

// Errors found on the reader's side.
var (
	// ErrIntegrity: a response MAC or CRC does not verify. The answer was
	// tampered with, replayed from another session, or the session is not
	// the card's.
	ErrIntegrity = errors.New("desfire: response integrity check failed (tampered, replayed or foreign session)")
	// ErrCardAuth: the card answered the authentication without proving
	// it knows the key (RndA' differs).
	ErrCardAuth = errors.New("desfire: card did not prove the key")
	// ErrMalformed: an answer of the wrong shape or length.
	ErrMalformed = errors.New("desfire: malformed answer")
	// ErrNotAuthenticated: the command needs a session and there is none
	// (never authenticated, or a refusal or key change ended it).
	ErrNotAuthenticated = errors.New("desfire: not authenticated")
)
