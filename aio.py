"""The async front door: :func:`connect` to an :class:`~knotsense.host.device.AsyncDevice`.

Either await it or use it directly as an async context manager::

    import knotsense.aio

    async with knotsense.aio.connect("sim://?scenario=back_session&seed=3") as dev:
        info = await dev.get_info()

    dev = await knotsense.aio.connect(url)   # then: await dev.close()

Like the package, importing this module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from knotsense.host.device import AsyncDevice

__all__ = ["Connecting", "connect"]


class Connecting:
    """What :func:`connect` returns: awaitable (the device) and an async context manager.

    ``async with`` opens the device on entry and closes it on exit; ``await``
    hands the open device to the caller, who closes it.
    """

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.url = url
        self.options = options
        self._device: AsyncDevice | None = None

    async def _open(self) -> AsyncDevice:
        from knotsense.host.device import AsyncDevice

        return await AsyncDevice.connect(self.url, **self.options)

    def __await__(self) -> Generator[Any, None, AsyncDevice]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncDevice:
        self._device = await self._open()
        return self._device

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        device, self._device = self._device, None
        if device is not None:
            await device.close()


def connect(url: str, **options: Any) -> Connecting:
    """Connect to the device at *url* (any device URL); *options* go to AsyncDevice.

    Returns:
        A :class:`Connecting`: ``await`` it for the open
        :class:`~knotsense.host.device.AsyncDevice`, or ``async with`` it.

    Raises:
        UnknownSchemeError, DeviceNotFoundError, TransportError: when awaited or
            entered, if the URL cannot be opened.
    """
    return Connecting(url, dict(options))
