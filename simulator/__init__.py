"""Telemetry simulator: synthetic environment and machine data for the Kapacitor ML demo.

`simulator.generate` is pure and deterministic (tests import it); `simulator.publish` sends
the data to MQTT (the compose stack) or to InfluxDB-style HTTP write endpoints (local demo).
Only the standard library is needed, plus paho-mqtt for the MQTT sink.
"""
