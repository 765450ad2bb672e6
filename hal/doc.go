// Package hal is Portier's hardware layer: readers, keypads, relays and inputs
// built on periph.io/x/conn interfaces, and the one place that turns a
// validated wiring configuration into devices.
package hal
