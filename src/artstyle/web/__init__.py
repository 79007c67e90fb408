"""The web page: :mod:`~artstyle.web.studio` (uploads, options and jobs, no Gradio) and
:mod:`~artstyle.web.page` (the Gradio page); ``artstyle serve`` is :mod:`artstyle.cli.serve`."""

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
    Limits,
    Studio,
    Update,
    Upload,
    control_default,
    for_page,
    limits_text,
    load_upload,
    page_message,
    preset_values,
)

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
]
