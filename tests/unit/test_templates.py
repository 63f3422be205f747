"""Message templates: every kind renders, missing variables fail, HTML escapes, languages fall back."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import UndefinedError

from dsr_gateway.connectors.templates import MessageTemplates, language_candidates, render
from dsr_gateway.domain.messages import MESSAGE_FIELDS, MessageKind
from tests.support.comms_factories import DEFAULTS, SAMPLE_CONTEXTS


@pytest.fixture(scope="module")
def templates() -> MessageTemplates:
    return MessageTemplates(defaults=DEFAULTS)


def test_every_kind_has_a_sample_and_a_field_list() -> None:
    assert set(SAMPLE_CONTEXTS) == set(MessageKind) == set(MESSAGE_FIELDS)
    for kind, fields in MESSAGE_FIELDS.items():
        assert set(SAMPLE_CONTEXTS[kind]) == set(fields), kind


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_renders_subject_text_and_html(templates: MessageTemplates, kind: MessageKind) -> None:
    message = templates.render(kind, "en", SAMPLE_CONTEXTS[kind])
    assert message.language == "en"
    assert message.subject
    assert "\n" not in message.subject
    assert "Shop Example Ltd" in message.text
    assert message.html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in message.html
    assert "Shop Example Ltd" in message.html


@pytest.mark.parametrize(
    ("kind", "missing"),
    [(kind, field) for kind, fields in MESSAGE_FIELDS.items() for field in fields],
)
def test_a_missing_variable_is_an_error(templates: MessageTemplates, kind: MessageKind, missing: str) -> None:
    context = {k: v for k, v in SAMPLE_CONTEXTS[kind].items() if k != missing}
    with pytest.raises(UndefinedError):
        templates.render(kind, "en", context)


def test_html_is_escaped_and_text_is_not(templates: MessageTemplates) -> None:
    context = dict(SAMPLE_CONTEXTS[MessageKind.REJECTED], reason='<script>alert("x")</script> & more')
    message = templates.render(MessageKind.REJECTED, "en", context)
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in message.html
    assert '<script>alert("x")</script> & more' in message.text


def test_subject_is_one_line_whatever_the_context(templates: MessageTemplates) -> None:
    context = dict(SAMPLE_CONTEXTS[MessageKind.PERMISSION_CHANGED], purpose_title="News\r\nBcc: x@evil")
    message = templates.render(MessageKind.PERMISSION_CHANGED, "en", context)
    assert "\r" not in message.subject
    assert "\n" not in message.subject
    assert message.subject == 'Your permission for "News Bcc: x@evil" was changed'


def test_completed_with_and_without_a_download_link(templates: MessageTemplates) -> None:
    with_link = templates.render(MessageKind.COMPLETED, "en", SAMPLE_CONTEXTS[MessageKind.COMPLETED])
    assert "https://gw.example/exports/abc?x=1&y=2" in with_link.text
    assert 'href="https://gw.example/exports/abc?x=1&amp;y=2"' in with_link.html
    assert "2026-04-09" in with_link.text
    context = dict(SAMPLE_CONTEXTS[MessageKind.COMPLETED], download_url=None, download_expires_on=None)
    without = templates.render(MessageKind.COMPLETED, "en", context)
    assert "Download" not in without.text
    assert "Download" not in without.html


@pytest.mark.parametrize(("material", "asks"), [(True, True), (False, False)])
def test_notice_changed_asks_for_action_only_when_material(
    templates: MessageTemplates, material: bool, asks: bool
) -> None:
    context = dict(SAMPLE_CONTEXTS[MessageKind.NOTICE_CHANGED], material=material)
    message = templates.render(MessageKind.NOTICE_CHANGED, "en", context)
    assert ("Personalised offers" in message.text) is asks
    assert ("You do not need to do anything" in message.text) is not asks
    assert ("review your choices" in message.subject.lower()) is asks
    assert "We now share your purchase history" in message.html


def test_rejected_names_the_supervisory_authority(templates: MessageTemplates) -> None:
    message = templates.render(MessageKind.REJECTED, "en", SAMPLE_CONTEXTS[MessageKind.REJECTED])
    assert "right to lodge a complaint" in message.text
    assert "Information Commissioner&#39;s Office" in message.html


@pytest.mark.parametrize(
    ("asked", "chosen", "subject_starts"),
    [
        ("de", "de", "Ihr Bestätigungscode"),
        ("de-AT", "de", "Ihr Bestätigungscode"),
        ("DE_de", "de", "Ihr Bestätigungscode"),
        ("en", "en", "Your verification code"),
        ("fr", "en", "Your verification code"),
        (None, "en", "Your verification code"),
        ("../../etc", "en", "Your verification code"),
    ],
)
def test_language_with_fallback_to_english(
    templates: MessageTemplates, asked: str | None, chosen: str, subject_starts: str
) -> None:
    message = templates.render(
        MessageKind.VERIFICATION_CODE, asked, SAMPLE_CONTEXTS[MessageKind.VERIFICATION_CODE]
    )
    assert message.language == chosen
    assert message.subject.startswith(subject_starts)
    assert f'<html lang="{chosen}">' in message.html


def test_a_kind_without_a_german_translation_falls_back_to_english(templates: MessageTemplates) -> None:
    message = templates.render(MessageKind.BREACH_NOTICE, "de", SAMPLE_CONTEXTS[MessageKind.BREACH_NOTICE])
    assert message.language == "en"
    assert message.subject.startswith("Important")


def test_language_candidates() -> None:
    assert language_candidates("pt-BR") == ["pt-br", "pt", "en"]
    assert language_candidates("en-GB") == ["en-gb", "en"]
    assert language_candidates("") == ["en"]


def test_an_override_directory_wins_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "verification_code.subject.txt").write_text("{{ organisation }} code {{ code }}")
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "rejected.txt").write_text("Eigener Text: {{ reason }}")
    custom = MessageTemplates(tmp_path, defaults=DEFAULTS)

    english = custom.render(
        MessageKind.VERIFICATION_CODE, "en", SAMPLE_CONTEXTS[MessageKind.VERIFICATION_CODE]
    )
    assert english.subject == "Shop Example Ltd code 493817"
    assert "enter this code" in english.text  # the parts not overridden stay packaged

    german = custom.render(MessageKind.REJECTED, "de", SAMPLE_CONTEXTS[MessageKind.REJECTED])
    assert german.text == "Eigener Text: We could not confirm your identity."
    assert german.subject.startswith("Wir konnten")


def test_an_override_directory_can_add_a_language(tmp_path: Path) -> None:
    (tmp_path / "fr").mkdir()
    for part, body in (
        ("subject.txt", "Code : {{ code }}"),
        ("txt", "Votre code {{ code }}"),
        ("html", "<p>{{ code }}</p>"),
    ):
        (tmp_path / "fr" / f"verification_code.{part}").write_text(body)
    message = MessageTemplates(tmp_path, defaults=DEFAULTS).render(
        MessageKind.VERIFICATION_CODE, "fr-CA", SAMPLE_CONTEXTS[MessageKind.VERIFICATION_CODE]
    )
    assert (message.language, message.subject, message.text) == ("fr", "Code : 493817", "Votre code 493817")


def test_a_missing_override_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        MessageTemplates(tmp_path / "nope")


def test_module_level_render_uses_the_packaged_templates() -> None:
    context = {**DEFAULTS, **SAMPLE_CONTEXTS[MessageKind.EXTENSION_NOTICE]}
    message = render(MessageKind.EXTENSION_NOTICE, "en", context)
    assert "2026-06-02" in message.text
