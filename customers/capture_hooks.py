"""Extension point of the clerk capture page for apps above customers (loyalty enrolment).

An extension adds fields to the capture form and acts after a successful capture. customers never
imports those apps: they register themselves here from their ``AppConfig.ready``.
"""

from __future__ import annotations

from typing import Protocol

from django import forms


class CaptureExtension(Protocol):
    #: a template fragment rendered inside the capture form, with the bound form in its context
    template_name: str

    def form_fields(self, *, store) -> dict[str, forms.Field]: ...

    def after_capture(self, *, result, cleaned_data: dict, store, clerk) -> list[str]:
        """Act on the captured customer; return lines to show the clerk."""
        ...


_extensions: list[CaptureExtension] = []


def capture_extension_register(extension: CaptureExtension) -> None:
    if extension not in _extensions:
        _extensions.append(extension)


def capture_extensions() -> list[CaptureExtension]:
    return list(_extensions)
