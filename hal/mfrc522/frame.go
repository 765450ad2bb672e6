package mfrc522

import (
	"context"
	"fmt"
	"time"
)

// MaxFrame is the largest frame, CRC included, the driver sends or
// receives in one piece: the FIFO's 64 bytes. It implements
// iso14443.Transceiver.
func (d *Dev) MaxFrame() int { return fifoSize }

// TransceiveCRC sends an ISO/IEC 14443-4 frame (or RATS) to the selected
// card with the chip appending CRC_A (TxModeReg.TxCRCEn) and returns the
// answer with the chip having checked and removed its CRC_A
// (RxModeReg.RxCRCEn). It waits up to timeout, counted by the chip's timer
// from the end of the frame; the host-side wait is bounded by that plus
// CommandTimeout. It implements iso14443.Transceiver.
//
// Errors: ErrNoCard (silence), ErrCRC, ErrProtocol (parity, framing, FIFO
// overflow) are card errors; ErrTimeout, ErrSPI and ErrNoChip mean the chip.
func (d *Dev) TransceiveCRC(ctx context.Context, frame []byte, timeout time.Duration) ([]byte, error) {
	if len(frame) == 0 || len(frame) > fifoSize-2 {
		return nil, fmt.Errorf("mfrc522: frame of %d bytes (the FIFO holds %d plus CRC)", len(frame), fifoSize-2)
	}
	resp, _, err := d.exchange(ctx, frame, 0, 0, timeout, true)
	if err != nil {
		return nil, err
	}
	if len(resp) == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrProtocol)
	}
	return resp, nil
}
