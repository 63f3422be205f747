"""Message templates: Jinja2, one subject/text/HTML triple per kind and language, overridable.

Lookup for kind K in language L (e.g. `de-AT`) tries, first hit wins:
`DSR_TEMPLATES_DIR/de-at/K.*`, packaged `de-at/K.*`, then `de`, then `en` in the same order. So a file in the
configured directory with the same relative name replaces the packaged one, and a language without a
translation falls back to English. HTML is autoescaped; the subject and the text are not (they are not
HTML), and the subject is folded onto one line so that it can never inject a mail header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    select_autoescape,
)

from dsr_gateway.domain.messages import MessageKind, RenderedMessage

__all__ = ["MessageKind", "MessageTemplates", "RenderedMessage", "TemplateMissing"]

DEFAULT_LANGUAGE = "en"
PARTS = ("subject.txt", "txt", "html")
MAX_CHOICES = 1024  # languages are free text from subjects: the lookup cache is bounded
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")


class TemplateMissing(LookupError):
    """No template for this kind in the language or in English: a deployment error, not a user one."""


def language_candidates(language: str | None) -> list[str]:
    """`de-AT` -> [`de-at`, `de`, `en`]; anything that is not a language tag -> [`en`]."""
    tag = (language or "").strip().lower().replace("_", "-")
    candidates: list[str] = []
    if _LANGUAGE.match(tag):
        candidates.append(tag)
        base = tag.split("-", 1)[0]
        if base != tag:
            candidates.append(base)
    if DEFAULT_LANGUAGE not in candidates:
        candidates.append(DEFAULT_LANGUAGE)
    return candidates


def _day(value: date | datetime | str) -> str:
    """Dates as ISO `YYYY-MM-DD`: unambiguous in every language."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _one_line(value: str) -> str:
    return " ".join(value.split())


class MessageTemplates:
    """Renders a message kind in a language; `defaults` (organisation name, contact ...) fill every one."""

    def __init__(self, override_dir: Path | None = None, defaults: Mapping[str, Any] | None = None) -> None:
        loaders: list[FileSystemLoader | PackageLoader] = []
        if override_dir is not None:
            if not override_dir.is_dir():
                raise ValueError(f"DSR_TEMPLATES_DIR {override_dir} is not a directory")
            loaders.append(FileSystemLoader(override_dir))
        loaders.append(PackageLoader("dsr_gateway", "templates"))
        self._env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Read once per process (a changed override needs a restart): no file stat per render.
            auto_reload=False,
        )
        self._env.filters["day"] = _day
        self._defaults = dict(defaults or {})
        # (kind, language asked) -> the language found and its three templates, looked up once.
        self._chosen: dict[tuple[MessageKind, str | None], tuple[str, tuple[Template, ...]]] = {}

    def render(self, kind: MessageKind, language: str | None, context: Mapping[str, Any]) -> RenderedMessage:
        """Subject, text and HTML of `kind`; a variable the template needs and `context` lacks raises."""
        chosen, templates = self._templates_for(kind, language)
        values = {**self._defaults, **context, "language": chosen}
        subject, text, html = (t.render(values) for t in templates)
        return RenderedMessage(subject=_one_line(subject), text=text, html=html, language=chosen)

    def _templates_for(self, kind: MessageKind, language: str | None) -> tuple[str, tuple[Template, ...]]:
        found = self._chosen.get((kind, language))
        if found is None:
            if len(self._chosen) >= MAX_CHOICES:
                self._chosen.clear()
            chosen = self._language_for(kind, language)
            parts = tuple(self._env.get_template(f"{chosen}/{kind.template}.{part}") for part in PARTS)
            found = self._chosen[(kind, language)] = (chosen, parts)
        return found

    def _language_for(self, kind: MessageKind, language: str | None) -> str:
        # A language counts only when all three parts exist in it: never an English subject over German text.
        for candidate in language_candidates(language):
            try:
                for part in PARTS:
                    self._env.get_template(f"{candidate}/{kind.template}.{part}")
            except TemplateNotFound:
                continue
            return candidate
        raise TemplateMissing(f"no template for message {kind.template!r} in {language!r} or English")


def render(
    kind: MessageKind,
    language: str | None,
    context: Mapping[str, Any],
    templates: MessageTemplates | None = None,
) -> RenderedMessage:
    """Convenience for the packaged templates; the app builds one MessageTemplates and reuses it."""
    return (templates or _packaged()).render(kind, language, context)


_PACKAGED: list[MessageTemplates] = []


def _packaged() -> MessageTemplates:
    if not _PACKAGED:
        _PACKAGED.append(MessageTemplates())
    return _PACKAGED[0]
