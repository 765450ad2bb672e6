package hal

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"periph.io/x/conn/v3/driver"
	"periph.io/x/conn/v3/driver/driverreg"
)

type fakeDriver string

func (f fakeDriver) String() string          { return string(f) }
func (f fakeDriver) Prerequisites() []string { return nil }
func (f fakeDriver) After() []string         { return nil }
func (f fakeDriver) Init() (bool, error)     { return true, nil }

// Issue 15: on a machine without GPIO or SPI the self-test says so and
// fails, instead of passing with "none loaded"; periph's skipped drivers and
// internal hints are not shown.
func TestHostCheck(t *testing.T) {
	none := &driverreg.State{Skipped: []driverreg.DriverFailure{{D: fakeDriver("sysfs-spi"), Err: errors.New("no SPI port found")}}}
	c := hostCheck(none, 0, 0)
	assert.False(t, c.OK)
	assert.Equal(t, "this machine has no GPIO and no SPI: it is not a Raspberry Pi (or a board like it), or its kernel's GPIO and SPI drivers could not be loaded", c.Detail)
	assert.Contains(t, c.Fix, "run portier doctor on the gateway itself")
	assert.Contains(t, c.Fix, "hardware.driver: sim")
	assert.NotContains(t, c.Detail+c.Fix, "skipped")

	broken := &driverreg.State{Failed: []driverreg.DriverFailure{{D: fakeDriver("ioctl-gpio"), Err: errors.New("permission denied")}}}
	c = hostCheck(broken, 0, 0)
	assert.False(t, c.OK)
	assert.Contains(t, c.Detail, "(ioctl-gpio failed: permission denied)")

	pi := &driverreg.State{Loaded: []driver.Impl{fakeDriver("ioctl-gpio"), fakeDriver("sysfs-spi")}}
	c = hostCheck(pi, 1, 2)
	assert.True(t, c.OK)
	assert.Equal(t, "loaded: ioctl-gpio, sysfs-spi", c.Detail)

	c = hostCheck(&driverreg.State{Loaded: []driver.Impl{fakeDriver("ioctl-gpio")}}, 1, 0)
	assert.True(t, c.OK, "GPIO without SPI is a Pi with SPI off: the reader's line says so")
}
