"""The BLE GATT layout of protocol v1.

A custom 128-bit service carries the protocol; standard services carry what
every BLE tool understands::

    KnotSense service   6b6e0001-7365-6e73-652d-6b6e6f747331
      data     6b6e0002-...   notify           device -> host frames
      control  6b6e0003-...   write, notify    host -> device commands;
                                               responses come back as notifications
    Device Information  0x180A  manufacturer, model, serial, firmware, hardware
    Battery             0x180F  battery level (0x2A19, read + notify)

Each notification or write carries exactly one unencoded frame. Frames never
exceed ATT MTU - 3 bytes; at the default MTU 23 that is 20 bytes.
"""

from __future__ import annotations

SERVICE_UUID = "6b6e0001-7365-6e73-652d-6b6e6f747331"
DATA_CHAR_UUID = "6b6e0002-7365-6e73-652d-6b6e6f747331"
CONTROL_CHAR_UUID = "6b6e0003-7365-6e73-652d-6b6e6f747331"

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
