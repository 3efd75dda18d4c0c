"""Helpers shared by the plugin's widgets."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from napari.utils import notifications
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QComboBox, QDockWidget, QMainWindow, QWidget

from ..logic.raw_layer import is_raw_layer


class DockedWidget(QWidget):
    """Base of the plugin's dock widgets: docked next to another napari-drift widget, it joins
    that one's tabs instead of stacking below it.

    napari docks plugin widgets of one side above each other; five of them in a
    1080-pixel-high window leave each a strip (the composer's editors a scroll strip, the
    classifier's table one row) and make the window taller than the screen. As tabs, each
    widget gets the whole height and the window's minimum height is that of its tallest
    widget, not their sum. The newest widget is shown; the tabs can be dragged apart.
    """

    def showEvent(self, event: Any) -> None:  # Qt's name
        super().showEvent(event)
        if not getattr(self, "_tabs_joined", False):
            self._tabs_joined = True
            QTimer.singleShot(0, self._join_plugin_tabs)  # after napari has placed the dock

    def _join_plugin_tabs(self) -> None:
        with contextlib.suppress(RuntimeError):  # the widget or its window was deleted meanwhile
            join_plugin_tabs(self)


def _dock_of(widget: QWidget) -> QDockWidget | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def join_plugin_tabs(widget: QWidget) -> bool:
    """Tabify ``widget``'s dock with another docked napari-drift widget's in the same area; True if it did."""
    dock = _dock_of(widget)
    window = dock.parentWidget() if dock is not None else None
    if dock is None or dock.isFloating() or not isinstance(window, QMainWindow):
        return False
    area = window.dockWidgetArea(dock)
    for other in window.findChildren(QDockWidget):
        inner = other.widget()
        if other is dock or other.isFloating() or not other.isVisible() or window.dockWidgetArea(other) != area:
            continue
        if isinstance(inner, DockedWidget) or (inner is not None and inner.findChild(DockedWidget) is not None):
            window.tabifyDockWidget(other, dock)
            dock.show()
            dock.raise_()
            return True
    return False


def notify_error(message: str) -> None:
    """Show an error notification (looked up at call time so tests can monkeypatch it)."""
    notifications.show_error(message)


def notify_warning(message: str) -> None:
    notifications.show_warning(message)


def layer_kind(layer: Any) -> str:
    """The napari layer type of ``layer`` (``"Points"``, ``"Image"``), also through napari's
    proxies (widgets docked from the manifest see ``PublicOnlyProxy`` objects, whose
    ``type()`` is the proxy's; ``__class__`` is the layer's)."""
    return layer.__class__.__name__


def frame_axes(layer: Any) -> int:
    """How many frame axes ``layer`` has before its 2-D image (0 for a single image; RGB channels not counted)."""
    return max(np.ndim(layer.data) - (3 if getattr(layer, "rgb", False) else 2), 0)


def current_frame(viewer: Any, layer: Any) -> tuple[int, ...]:
    """The frame of ``layer`` that ``viewer`` shows: one index per frame axis (``()`` for a single image)."""
    axes = frame_axes(layer)
    if not axes:
        return ()
    point = tuple(viewer.dims.point)[-layer.ndim :]
    coordinates = layer.world_to_data(point)[:axes]
    shape = np.shape(layer.data)[:axes]
    return tuple(int(min(max(round(float(c)), 0), n - 1)) for c, n in zip(coordinates, shape, strict=False))


def derived_geometry(source: Any, leading: tuple[str, ...] = ()) -> dict[str, Any]:
    """``scale``, ``units`` and ``axis_labels`` for a layer computed from ``source`` (views of a
    raw layer), with extra ``leading`` axes (e.g. ``("preset",)``): it then lies on ``source``
    in world coordinates, in the same physical units."""
    n = len(leading)
    return {
        "scale": (1.0,) * n + tuple(float(s) for s in source.scale),
        "units": ("pixel",) * n + tuple(str(u) for u in source.units),
        "axis_labels": tuple(leading) + tuple(str(a) for a in source.axis_labels),
    }


def image_geometry(source: Any) -> dict[str, Any]:
    """``scale`` and ``units`` of ``source``'s last two (image) axes, for a 2-D layer made from one of its frames."""
    return {"scale": tuple(float(s) for s in source.scale)[-2:], "units": tuple(str(u) for u in source.units)[-2:]}


def viewer_units(viewer: Any) -> dict[str, Any]:
    """``units`` for a new 2-D layer that is not physical (a figure): those of the viewer's
    layers when they have physical units, else nothing. napari warns ("Inconsistent units
    across layers") and stops using units when the layers' units differ."""
    for layer in viewer.layers:
        units = tuple(str(u) for u in layer.units)[-2:]
        if any(u != "pixel" for u in units):
            return {"units": units}
    return {}


def put_layer(viewer: Any, layer: Any, data: Any, kwargs: dict[str, Any]) -> Any:
    """Show ``data`` in ``layer`` (updated in place when it is still in ``viewer`` with as many
    axes), else in a new RGB image layer; ``kwargs`` as for ``viewer.add_image`` (name,
    metadata, scale, units, axis_labels, contrast_limits, visible). Returns the layer shown."""
    if layer is not None and layer in viewer.layers and np.ndim(layer.data) == np.ndim(data):
        layer.data = data
        for key in ("name", "metadata", "scale", "units", "axis_labels", "contrast_limits"):
            if key in kwargs:
                setattr(layer, key, kwargs[key])
        return layer
    if layer is not None and layer in viewer.layers:
        viewer.layers.remove(layer)
    return viewer.add_image(data, rgb=True, **kwargs)


def guarded(slot: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Qt slot so that any exception becomes an error notification, never a raise."""

    @functools.wraps(slot)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return slot(*args, **kwargs)
        except Exception as exc:  # a slot must not raise into Qt
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

    def _on_renamed(self, event: Any = None) -> None:
        """A layer was renamed: list the new names; the chosen layer stays chosen under its new name (no signal: the same layer)."""
        try:
            chosen, new = self.currentText(), getattr(getattr(event, "source", None), "name", None)  # the event carries the layer
            renamed_choice = bool(chosen) and chosen not in self._viewer.layers and isinstance(new, str)
            self.blockSignals(True)
            self.clear()
            self.addItems([layer.name for layer in self._viewer.layers if is_raw_layer(layer)])
            self.setCurrentText(new if renamed_choice else chosen)
            self.blockSignals(False)
        except RuntimeError:  # the Qt object was deleted (widget closed): stop listening
            source = getattr(event, "source", None)
            if source is not None:
                source.events.name.disconnect(self._on_renamed)

    def disconnect_viewer(self) -> None:
        events = self._viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            with contextlib.suppress(Exception):  # already disconnected
                emitter.disconnect(self.refresh)

    def _refresh(self) -> None:
        current = self.currentText()
        for layer in self._viewer.layers:
            layer.events.name.connect(self._on_renamed)  # once: napari ignores a callback connected again
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
