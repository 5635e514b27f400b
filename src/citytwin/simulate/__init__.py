"""A simulated city that feeds the platform through its public interfaces (HTTP and
MQTT), for the demo, for trying the platform out and for tests."""
