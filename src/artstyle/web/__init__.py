"""The web page: :mod:`~artstyle.web.studio` (uploads, options and jobs, no Gradio) and
:mod:`~artstyle.web.page` (the Gradio page); ``artstyle serve`` is :mod:`artstyle.cli.serve`.

The server's :class:`Limits` need no PyTorch; the page and its jobs are imported at their
first use (see :mod:`artstyle._lazy`), so that ``artstyle serve --help`` answers at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artstyle import _lazy
from artstyle.web.limits import Limits

if TYPE_CHECKING:
    from artstyle.web.page import build_app, example_images, status_html
    from artstyle.web.studio import (
        CONTROLS,
        DONE,
        FAILED,
        RUNNING,
        STOPPED,
        WAITING,
        Control,
        Job,
        Studio,
        Update,
        Upload,
        control_default,
        for_page,
        limits_text,
        load_upload,
        page_message,
        preset_values,
        switched_options,
    )

_LAZY = {
    "CONTROLS": "artstyle.web.studio",
    "Control": "artstyle.web.studio",
    "DONE": "artstyle.web.studio",
    "FAILED": "artstyle.web.studio",
    "Job": "artstyle.web.studio",
    "RUNNING": "artstyle.web.studio",
    "STOPPED": "artstyle.web.studio",
    "Studio": "artstyle.web.studio",
    "Update": "artstyle.web.studio",
    "Upload": "artstyle.web.studio",
    "WAITING": "artstyle.web.studio",
    "build_app": "artstyle.web.page",
    "control_default": "artstyle.web.studio",
    "example_images": "artstyle.web.page",
    "for_page": "artstyle.web.studio",
    "limits_text": "artstyle.web.studio",
    "load_upload": "artstyle.web.studio",
    "page_message": "artstyle.web.studio",
    "preset_values": "artstyle.web.studio",
    "status_html": "artstyle.web.page",
    "switched_options": "artstyle.web.studio",
}


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return _lazy.names(__name__, _LAZY)


__all__ = [
    "CONTROLS",
    "DONE",
    "FAILED",
    "RUNNING",
    "STOPPED",
    "WAITING",
    "Control",
    "Job",
    "Limits",
    "Studio",
    "Update",
    "Upload",
    "build_app",
    "control_default",
    "example_images",
    "for_page",
    "limits_text",
    "load_upload",
    "page_message",
    "preset_values",
    "status_html",
    "switched_options",
]
