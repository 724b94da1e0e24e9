"""Kapacitor from the outside: its HTTP API client and the kapacitor.conf renderer."""
