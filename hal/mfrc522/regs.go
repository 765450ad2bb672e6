package mfrc522

// Registers (MFRC522 datasheet §9).
const (
	regCommand     = 0x01
	regComIEn      = 0x02
	regDivIEn      = 0x03
	regComIrq      = 0x04
	regDivIrq      = 0x05
	regError       = 0x06
	regFIFOData    = 0x09
	regFIFOLevel   = 0x0A
	regControl     = 0x0C
	regBitFraming  = 0x0D
	regColl        = 0x0E
	regMode        = 0x11
	regTxMode      = 0x12
	regRxMode      = 0x13
	regTxControl   = 0x14
	regTxASK       = 0x15
	regCRCResultH  = 0x21
	regCRCResultL  = 0x22
	regTMode       = 0x2A
	regTPrescaler  = 0x2B
	regTReloadH    = 0x2C
	regTReloadL    = 0x2D
	regVersion     = 0x37
	cmdIdle        = 0x00
	cmdCalcCRC     = 0x03
	cmdTransmit    = 0x04
	cmdTransceive  = 0x0C
	cmdSoftReset   = 0x0F
	powerDown      = 0x10 // CommandReg: soft power-down, set while a reset runs
	irqSet         = 0x80 // ComIrq/DivIrq: 1 = set the marked bits, 0 = clear them
	irqTx          = 0x40
	irqRx          = 0x20
	irqIdle        = 0x10
	irqErr         = 0x02
	irqTimer       = 0x01
	irqCRC         = 0x04 // DivIrq
	irqInv         = 0x80 // ComIEn: IRQ pin active low
	irqPushPull    = 0x80 // DivIEn
	errProtocol    = 0x01
	errParity      = 0x02
	errCRC         = 0x04
	errColl        = 0x08
	errBufferOvfl  = 0x10
	startSend      = 0x80
	flushFIFO      = 0x80
	collPosInvalid = 0x20
	antennaOn      = 0x03 // TxControl: Tx1RFEn | Tx2RFEn
	timerAuto      = 0x80 // TMode: TAuto, the timer starts when a transmission ends
	timerPrescaler = 0xA9 // 13.56 MHz / (2·169+1) = 40 kHz: 25 µs per tick
	timerTick      = 25   // µs
	crcPreset6363  = 0x3D // ModeReg: CRC_A preset, MSBFirst off
	crcEnable      = 0x80 // TxModeReg TxCRCEn / RxModeReg RxCRCEn
	fifoSize       = 64
	ask100         = 0x40
)

// ISO/IEC 14443-3 type A commands.
const (
	piccREQA      = 0x26
	piccWUPA      = 0x52
	piccSEL1      = 0x93
	piccSEL2      = 0x95
	piccSEL3      = 0x97
	piccHLTA      = 0x50
	cascadeTag    = 0x88
	sakCascade    = 0x04 // SAK: UID not complete
	sakISO14443_4 = 0x20 // SAK: the card speaks ISO/IEC 14443-4
	nvbSelect     = 0x70
	nvbAnticoll   = 0x20
)
