"""Edge IoT gateway for the Raspberry Pi: sensors in, a compressed ring-file store, downsampling
tasks, store-and-forward replication, and a status page, in one process."""

__version__ = "0.1.0"
