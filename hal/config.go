package hal

// Config is the hardware section of portier.yaml: which board driver to use
// and how devices are wired. cmd/portier decodes it; hal validates it and
// turns it into devices.
type Config struct {
	// Driver selects the backend: "sim" (simulated board) or "periph" (real GPIO/SPI).
	Driver string `yaml:"driver"`
}
