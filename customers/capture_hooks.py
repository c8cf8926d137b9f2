"""Extension point of the clerk capture page for apps above customers (loyalty enrolment).

An extension adds fields to the capture form and acts after a successful capture. customers never
imports those apps: they register themselves here from their ``AppConfig.ready``.
"""

from __future__ import annotations

from typing import Protocol, TypedDict

from django import forms


class CaptureExtension(Protocol):
    #: a template fragment rendered inside the capture form, with the bound form in its context
    template_name: str

    def form_fields(self, *, store) -> dict[str, forms.Field]: ...

    def after_capture(self, *, result, cleaned_data: dict, store, clerk) -> list[str | CaptureNote]:
        """Act on the captured customer; return what to show the clerk on the "Saved" page."""
        ...

    def till_links(self) -> list[tuple[str, str]]:
        """(label, URL) of the extension's own clerk pages, linked from the capture and "Saved" pages."""
        ...


class CaptureNote(TypedDict, total=False):
    """A note on the "Saved" page; kept in the session until shown, so plain JSON values only."""

    text: str
    #: a template fragment that draws the note (``note`` in its context) instead of its text
    template: str
    data: dict


def capture_note(item: str | CaptureNote) -> CaptureNote:
    return {"text": item} if isinstance(item, str) else item


def capture_links() -> list[tuple[str, str]]:
    links: list[tuple[str, str]] = []
    for extension in _extensions:
        if hasattr(extension, "till_links"):
            links += extension.till_links()
    return links


_extensions: list[CaptureExtension] = []


def capture_extension_register(extension: CaptureExtension) -> None:
    if extension not in _extensions:
        _extensions.append(extension)


def capture_extensions() -> list[CaptureExtension]:
    return list(_extensions)
