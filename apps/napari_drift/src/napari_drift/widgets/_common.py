"""Helpers shared by the plugin's widgets."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from napari.utils import notifications
from qtpy.QtWidgets import QComboBox

from ..logic.raw_layer import is_raw_layer


def notify_error(message: str) -> None:
    """Show an error notification (looked up at call time so tests can monkeypatch it)."""
    notifications.show_error(message)


def notify_warning(message: str) -> None:
    notifications.show_warning(message)


def guarded(slot: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Qt slot so that any exception becomes an error notification, never a raise."""

    @functools.wraps(slot)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return slot(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a slot must not raise into Qt
            notify_error(f"{type(exc).__name__}: {exc}")
            return None

    return wrapper


class RawLayerCombo(QComboBox):
    """A combo box listing the viewer's ispkit raw layers, kept in sync with the layer list."""

    def __init__(self, viewer: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self._viewer = viewer
        viewer.layers.events.inserted.connect(self.refresh)
        viewer.layers.events.removed.connect(self.refresh)
        viewer.layers.events.reordered.connect(self.refresh)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        try:
            self._refresh()
        except RuntimeError:  # the Qt object was deleted (widget closed): stop listening
            self.disconnect_viewer()

    def disconnect_viewer(self) -> None:
        events = self._viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            try:
                emitter.disconnect(self.refresh)
            except Exception:  # noqa: BLE001 - already disconnected
                pass

    def _refresh(self) -> None:
        current = self.currentText()
        names = [layer.name for layer in self._viewer.layers if is_raw_layer(layer)]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        self.blockSignals(False)
        if current not in names:
            self.currentTextChanged.emit(self.currentText())

    def layer(self) -> Any | None:
        name = self.currentText()
        return self._viewer.layers[name] if name and name in self._viewer.layers else None
