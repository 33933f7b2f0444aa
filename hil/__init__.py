"""knotsense.hil: the hardware-in-the-loop pytest suite, target chosen by a device URL."""
