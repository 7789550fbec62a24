"""The asyncio shell: sockets, serial ports, timers and processes around the pure core."""
