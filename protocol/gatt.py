"""The BLE GATT layout of protocol v1.

A custom 128-bit service carries the protocol; standard services carry what
every BLE tool understands::

    KnotSense service   6b6e0001-7365-6e73-652d-6b6e6f747331
      data     6b6e0002-...   notify           device -> host frames
      control  6b6e0003-...   write, notify    host -> device commands;
                                               responses come back as notifications
      link     6b6e0004-...   read             v1.1: 01 = frames travel as fragments
    Device Information  0x180A  manufacturer, model, serial, firmware, hardware
    Battery             0x180F  battery level (0x2A19, read + notify)

With the link characteristic (v1.1) each notification or write carries one
fragment (fragment.py), so frames of any size travel at any MTU; without it
(v1.0) each carries exactly one unencoded frame of at most ATT MTU - 3 bytes.
"""

from __future__ import annotations

SERVICE_UUID = "6b6e0001-7365-6e73-652d-6b6e6f747331"
DATA_CHAR_UUID = "6b6e0002-7365-6e73-652d-6b6e6f747331"
CONTROL_CHAR_UUID = "6b6e0003-7365-6e73-652d-6b6e6f747331"
LINK_CHAR_UUID = "6b6e0004-7365-6e73-652d-6b6e6f747331"
"""Protocol v1.1: readable, one byte, the link layer (1 = fragments, fragment.py).
A device without it speaks v1.0: one frame per notification or write."""

DEVICE_INFORMATION_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
MANUFACTURER_NAME_UUID = "00002a29-0000-1000-8000-00805f9b34fb"
MODEL_NUMBER_UUID = "00002a24-0000-1000-8000-00805f9b34fb"
SERIAL_NUMBER_UUID = "00002a25-0000-1000-8000-00805f9b34fb"
FIRMWARE_REVISION_UUID = "00002a26-0000-1000-8000-00805f9b34fb"
HARDWARE_REVISION_UUID = "00002a27-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

ADVERTISED_NAME_PREFIX = "KnotSense-"
"""Devices advertise as ``KnotSense-`` + the last 4 hex digits of the serial number."""
