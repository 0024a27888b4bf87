"""The embedded default stack: a private PostgreSQL+TimescaleDB cluster, a private Mosquitto,
and the wattwatch services, all under one state folder."""
