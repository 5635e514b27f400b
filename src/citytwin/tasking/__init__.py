"""SensorThings Tasking Core (OGC 17-079r1): validation of taskingParameters, the drivers
that hand Tasks to devices, and the dispatcher that runs them. See docs/tasking.md."""
