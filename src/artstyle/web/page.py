"""The web page (Gradio): ``artstyle serve`` shows it, :class:`~artstyle.web.studio.Studio` runs its jobs.

Gradio is imported only inside :func:`build_app`, so ``import artstyle`` never needs it.

This module does not use ``from __future__ import annotations``: Gradio finds the
``gr.Request`` parameter of an event handler by evaluating its annotation, which must
therefore be a real object, not a string naming a lazily imported module.
"""

import contextlib
import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artstyle import examples
from artstyle.config import PRESETS
from artstyle.errors import ArtstyleError
from artstyle.web.limits import Limits
from artstyle.web.studio import (
    CONTROLS,
    CONTROLS_PER_ROW,
    FAILED,
    WAITING,
    Control,
    Studio,
    Update,
    control_default,
    limits_text,
    losses_text,
    page_message,
    preset_values,
    switched_options,
)

if TYPE_CHECKING:
    import gradio as gr

#: The example images that ship with the package (:mod:`artstyle.examples`).
EXAMPLES_DIR = examples.DIRECTORY


def status_html(update: Update | None) -> str:
    """The status panel: a progress bar, what is happening and the current losses."""
    if update is None:
        return '<div class="artstyle-status"><p>Choose a photo and a painting, then press Start.</p></div>'
    parts = [f'<div class="artstyle-status" data-state="{update.state}">']
    if update.iterations:
        parts.append(f'<progress max="{update.iterations}" value="{update.step}"></progress>')
    parts.append(f'<p class="artstyle-message">{html.escape(update.message)}</p>')
    if update.losses:
        parts.append(f'<p class="artstyle-losses">Losses: {html.escape(losses_text(update.losses))}</p>')
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------- #
# The page
# --------------------------------------------------------------------------- #

CSS = """
.artstyle-status progress { width: 100%; height: 0.9em; appearance: none; border: none; border-radius: 4px;
  overflow: hidden; background: var(--neutral-200, #e5e7eb); }
.artstyle-status progress::-webkit-progress-bar { background: var(--neutral-200, #e5e7eb); }
.artstyle-status progress::-webkit-progress-value { background: var(--color-accent, #f97316); }
.artstyle-status progress::-moz-progress-bar { background: var(--color-accent, #f97316); }
.artstyle-status[data-state="failed"] .artstyle-message { color: #b91c1c; font-weight: 600; }
.artstyle-losses { font-family: monospace; font-size: 0.9em; }
#preview img { width: 100%; height: 100%; object-fit: contain; }
"""

_INTRO = """# artstyle
Repaint a photo in the style of one or more paintings (neural style transfer, Gatys et al. 2016).
Upload a photo and a painting (or click the examples), press **Start**, watch the picture form,
and press **Stop** when you like it: the current picture is kept. Jobs run one at a time.
"""


def example_images(directory: Path = EXAMPLES_DIR) -> tuple[list[str], list[str]]:
    """The example content and style images, when the examples folder is there."""
    content, styles = (examples.images(directory / folder) for folder in ("content", "styles"))
    return [str(p) for p in content], [str(p) for p in styles]


def _make_control(gr: Any, control: Control, limits: Limits) -> Any:
    value = control_default(control, limits)
    common: dict[str, Any] = {"label": control.label, "info": control.info, "elem_id": f"option-{control.name}"}
    if control.widget == "slider":
        maximum = getattr(limits, control.limit) if control.limit else control.maximum
        if control.switch:  # off until its tick box is ticked: the slider rests, greyed out
            common["interactive"] = value is not None
            value = control.resting if value is None else value
        return gr.Slider(minimum=control.minimum, maximum=maximum, step=control.step, value=value, **common)
    if control.widget == "number":
        return gr.Number(value=value, minimum=control.minimum, placeholder=control.placeholder, **common)
    if control.widget == "radio":
        if isinstance(value, bool):  # on/off switches (Config accepts both spellings)
            value = "on" if value else "off"
        return gr.Radio(choices=list(control.choices), value=value, **common)
    if control.widget == "text":
        return gr.Textbox(value="" if value is None else str(value), placeholder=control.placeholder, **common)
    raise ValueError(f"unknown widget {control.widget!r} for {control.name}")


@dataclass
class _Page:
    """The page's components that the event handlers read or write."""

    job_id: Any
    content: Any
    styles: Any
    style_masks: Any
    preset: Any
    controls: dict[str, Any]
    switches: dict[str, Any]
    preview: Any
    status: Any
    start: Any
    stop: Any
    download: Any


def build_app(studio: Studio, examples: tuple[list[str], list[str]] | None = None) -> "gr.Blocks":
    """The page, wired to ``studio``. Needs Gradio."""
    import gradio as gr

    app = gr.Blocks(title="artstyle", analytics_enabled=False, delete_cache=(1800, 7200))
    with app:
        page = _layout(gr, studio.limits, example_images() if examples is None else examples)
        _wire(gr, app, studio, page)
    return app


def _layout(gr: Any, limits: Limits, examples: tuple[list[str], list[str]]) -> _Page:
    job_id = gr.State(None)
    gr.Markdown(f"{_INTRO}\n{limits_text(limits)}")
    with gr.Row(equal_height=False):
        with gr.Column():
            content, styles, style_masks = _inputs(gr, examples)
        with gr.Column():
            preview = gr.Image(label="Picture", type="pil", interactive=False, height=420, elem_id="preview")
            status = gr.HTML(status_html(None), elem_id="status")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="start")
                stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop")
            download = gr.DownloadButton("Download PNG (with its parameters)", visible=False, elem_id="download")
    with gr.Accordion("Options", open=True):
        preset = gr.Radio(
            choices=list(PRESETS),
            value="default",
            label="Preset",
            info="draft: a quick preview; fine: more iterations (sets the iterations below)",
            elem_id="option-preset",
        )
        controls, switches = _options(gr, limits)
    return _Page(
        job_id, content, styles, style_masks, preset, controls, switches, preview, status, start, stop, download
    )


def _options(gr: Any, limits: Limits) -> tuple[dict[str, Any], dict[str, Any]]:
    """The controls in rows, by option name, and the tick boxes of those that have a switch."""
    controls: dict[str, Any] = {}
    switches: dict[str, Any] = {}
    for first in range(0, len(CONTROLS), CONTROLS_PER_ROW):
        with gr.Row():
            for control in CONTROLS[first : first + CONTROLS_PER_ROW]:
                if not control.switch:
                    controls[control.name] = _make_control(gr, control, limits)
                    continue
                with gr.Column(min_width=160):  # the tick box above its slider
                    on = control_default(control, limits) is not None
                    switches[control.name] = gr.Checkbox(
                        value=on, label=control.switch, elem_id=f"option-{control.name}-on"
                    )
                    controls[control.name] = _make_control(gr, control, limits)
    return controls, switches


def _inputs(gr: Any, examples: tuple[list[str], list[str]]) -> tuple[Any, Any, Any]:
    """The photo, the paintings and their masks, with the example pictures."""
    content_examples, style_examples = examples
    content = gr.Image(
        label="Content image (a photo)",
        type="filepath",
        image_mode=None,  # so Gradio hands over the file without decoding it
        sources=["upload", "clipboard"],
        height=260,
        elem_id="content",
    )
    styles = _gallery(gr, "Style images (one or more paintings)", 200, "styles")
    if content_examples:
        gr.Examples([[p] for p in content_examples], inputs=[content], label="Example photos", elem_id="example-photos")
    if style_examples:
        gr.Examples(
            [[[p]] for p in style_examples], inputs=[styles], label="Example paintings", elem_id="example-paintings"
        )
    with gr.Accordion("Style masks (optional)", open=False):
        label = "One greyscale mask per painting, in the same order: white where that painting's style goes"
        style_masks = _gallery(gr, label, 160, "style-masks")
    return content, styles, style_masks


def _gallery(gr: Any, label: str, height: int, elem_id: str) -> Any:
    """An upload gallery of image files, handed over as paths."""
    return gr.Gallery(
        label=label, type="filepath", file_types=["image"], interactive=True, columns=4, height=height, elem_id=elem_id
    )


def _show(gr: Any, update: Update) -> tuple[Any, ...]:
    """An update as the values of (picture, status, download, start, stop)."""
    picture = update.image if update.image is not None else gr.skip()
    if not update.final:
        return picture, status_html(update), gr.skip(), gr.skip(), gr.skip()
    result = gr.DownloadButton(value=str(update.result), visible=True) if update.result else gr.skip()
    return picture, status_html(update), result, gr.Button(interactive=True), gr.Button(interactive=False)


def _gallery_paths(items: Any) -> list[str]:
    """The file paths of a Gallery's value (Gradio gives (path, caption) pairs)."""
    return [item[0] if isinstance(item, (tuple, list)) else item for item in items or []]


def _wire_preset(gr: Any, studio: Studio, page: _Page) -> None:
    """Choosing a preset sets the controls that presets set (the others keep their values)."""
    names = list(preset_values("default", studio.limits))

    def choose_preset(name: str) -> list[Any]:
        values = preset_values(name, studio.limits)
        return [gr.update(value=values[control]) for control in names]

    page.preset.change(choose_preset, [page.preset], [page.controls[n] for n in names], show_progress="hidden")


def _wire(gr: Any, app: Any, studio: Studio, page: _Page) -> None:
    def submit(values: dict[Any, Any], request: gr.Request) -> tuple[Any, ...]:
        paths, masks = _gallery_paths(values[page.styles]), _gallery_paths(values[page.style_masks])
        switched_on = {name: bool(values[box]) for name, box in page.switches.items()}
        options = switched_options({name: values[c] for name, c in page.controls.items()}, switched_on)
        options["preset"] = values[page.preset]
        try:
            job = studio.submit(request.session_hash or "", values[page.content], paths, options, masks or None)
        except ArtstyleError as exc:
            raise gr.Error(html.escape(page_message(exc)), print_exception=False) from None
        waiting = Update(WAITING, "Waiting in the queue…", 0, job.config.iterations)
        hidden = gr.DownloadButton(visible=False)
        return job.id, status_html(waiting), hidden, gr.Button(interactive=False), gr.Button(interactive=True)

    def run(job_id: str | None) -> Iterator[tuple[Any, ...]]:
        job = studio.job(job_id)
        if job is None:
            yield _show(gr, Update(FAILED, "This job is gone from the server; press Start again."))
            return
        with contextlib.closing(studio.run(job)) as updates:  # Gradio closes us when the browser goes away
            for update in updates:
                yield _show(gr, update)
                if update.state == FAILED:
                    raise gr.Error(html.escape(update.message), print_exception=False)

    def request_stop(job_id: str | None) -> None:
        studio.stop(job_id, "stopped")

    def unload(request: gr.Request) -> None:
        studio.close_session(request.session_hash or "")

    _wire_preset(gr, studio, page)
    for name, box in page.switches.items():  # a slider answers only while its tick box is ticked
        box.change(lambda on: gr.update(interactive=on), [box], [page.controls[name]], show_progress="hidden")
    inputs = {page.content, page.styles, page.style_masks, page.preset, *page.controls.values()}
    inputs |= set(page.switches.values())
    outputs = [page.preview, page.status, page.download, page.start, page.stop]
    submitted = page.start.click(submit, inputs, [page.job_id, *outputs[1:]], show_progress="hidden", api_name="submit")
    submitted.success(
        run,
        [page.job_id],
        outputs,
        concurrency_limit=1,
        concurrency_id="device",
        show_progress="full",
        show_progress_on=[page.status],
        api_name="run",
    )
    page.stop.click(request_stop, [page.job_id], None, concurrency_limit=None, show_progress="hidden", api_name="stop")
    app.unload(unload)
