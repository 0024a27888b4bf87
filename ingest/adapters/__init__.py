"""Device-format adapters: pure functions from an MQTT message to readings."""
