package agent

import "time"

// feedbackKind is a short LED/buzzer pattern shown on top of the door's base
// state. The base state is: green LED while the relay is energised, red LED
// during lockdown and lockout, buzzer while forced_open or held_open is
// active. A pattern adds its outputs for its duration; a newer pattern
// replaces an older one.
type feedbackKind int

const (
	fbNone      feedbackKind = iota
	fbGranted                // buzzer 200 ms (green follows the relay)
	fbDenied                 // red + buzzer 1 s
	fbKey                    // green 100 ms per key
	fbAwaitPIN               // green + buzzer 300 ms: card accepted, type the PIN
	fbLockedOut              // red + buzzer 3 s
	fbPreAlarm               // buzzer 1 s
	fbEnrolled               // green + buzzer 500 ms
)

func (k feedbackKind) spec() (green, red, buzzer bool, d time.Duration) {
	switch k {
	case fbGranted:
		return false, false, true, 200 * time.Millisecond
	case fbDenied:
		return false, true, true, time.Second
	case fbKey:
		return true, false, false, 100 * time.Millisecond
	case fbAwaitPIN:
		return true, false, true, 300 * time.Millisecond
	case fbLockedOut:
		return false, true, true, 3 * time.Second
	case fbPreAlarm:
		return false, false, true, time.Second
	case fbEnrolled:
		return true, false, true, 500 * time.Millisecond
	}
	return false, false, false, 0
}

const (
	outGreen = iota
	outRed
	outBuzzer
	numFeedbackOutputs
)

// outputLevel is the last level written to an output; unknown until the
// first write, so the first write always happens.
type outputLevel struct {
	known, on bool
}

func (c *Controller) show(k feedbackKind) {
	c.overlay = k
	_, _, _, d := k.spec()
	c.arm(timerFeedback, d)
}

// applyOutputs drives the LEDs and the buzzer to base state plus overlay.
func (c *Controller) applyOutputs() {
	g, r, b, _ := c.overlay.spec()
	want := [numFeedbackOutputs]bool{
		outGreen:  g || c.strike.state().On,
		outRed:    r || c.lockdown || c.lockedOut(),
		outBuzzer: b || c.forced || c.heldAlarm,
	}
	c.drive(want)
	c.indicate(c.signal(), false)
}

// setOutputsSafe switches every feedback output off, writing even those
// believed off.
func (c *Controller) setOutputsSafe() {
	c.outLevels = [numFeedbackOutputs]outputLevel{}
	c.drive([numFeedbackOutputs]bool{})
	c.indicate(SignalIdle, true)
}

func (c *Controller) drive(want [numFeedbackOutputs]bool) {
	outs := [numFeedbackOutputs]Output{c.cfg.GreenLED, c.cfg.RedLED, c.cfg.Buzzer}
	names := [numFeedbackOutputs]string{"green_led", "red_led", "buzzer"}
	for i, o := range outs {
		if o == nil {
			continue
		}
		l := &c.outLevels[i]
		if l.known && l.on == want[i] {
			continue
		}
		if err := o.Set(want[i]); err != nil {
			c.log.Warn("feedback output failed", "output", names[i], "err", err)
			l.known = false
			continue
		}
		l.known, l.on = true, want[i]
	}
}
