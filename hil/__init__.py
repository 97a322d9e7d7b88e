"""Hardware-in-the-loop scenarios: one set, run on the emulated rig, the booted image and a Pi."""
