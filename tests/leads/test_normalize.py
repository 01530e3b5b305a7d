"""The intake normalizers: known inputs, clear errors, and properties over arbitrary input."""

from __future__ import annotations

import contextlib

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leads.intake.normalize import (
    NormalizationError,
    clean_text,
    normalize_country,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_state,
    split_full_name,
)

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.binary().map(lambda b: b.decode("latin-1")),
    st.lists(st.text(max_size=5), max_size=3),
)
REGIONS = st.sampled_from(["IN", "US", "GB", "AE", "DE", "BR", "", None])


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("098765 43210", "IN", "+919876543210"),
        ("+91 98765-43210", "US", "+919876543210"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("0044 20 7946 0958", "IN", "+442079460958"),
        (9876543210, "IN", "+919876543210"),
        ("  ", "IN", ""),
        (None, "IN", ""),
    ],
)
def test_phone_to_e164(raw, region, expected):
    assert normalize_phone(raw, region=region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "message"),
    [
        ("12", "IN", "not a valid phone number"),
        ("call me maybe", "IN", "not a phone number"),
        ("98765 43210", None, "country code"),
        ("+1 555 0000", "US", "not a valid phone number"),
    ],
)
def test_phone_errors_say_why(raw, region, message):
    with pytest.raises(NormalizationError, match=message):
        normalize_phone(raw, region=region)


@settings(max_examples=300, deadline=None)
@given(raw=ANYTHING, region=REGIONS)
@example(raw="+0", region="IN")
@example(raw="\x00+91\u200b98765", region="IN")
def test_phone_never_raises_anything_else_and_only_returns_valid_e164(raw, region):
    try:
        phone = normalize_phone(raw, region=region)
    except NormalizationError as error:
        assert str(error)
        return
    if phone:
        assert phone.startswith("+")
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, None))
        assert normalize_phone(phone, region=None) == phone  # idempotent


@settings(max_examples=200, deadline=None)
@given(national=st.from_regex(r"[6-9][0-9]{9}", fullmatch=True))
def test_every_valid_indian_mobile_comes_out_the_same_however_written(national):
    expected = (
        normalize_phone(national, region="IN")
        if phonenumbers.is_valid_number(phonenumbers.parse(national, "IN"))
        else None
    )
    if expected is None:
        return
    for written in (f"0{national}", f"+91 {national[:5]} {national[5:]}", f"0091-{national}", f"(+91) {national}"):
        assert normalize_phone(written, region="IN") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" John.Doe@Example.COM ", "john.doe@example.com"), ("", ""), (None, ""), ("a@b.co\u200b", "a@b.co")],
)
def test_email(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["plainaddress", "x@", "@example.com", "a@b", "a b@example.com"])
def test_bad_emails_are_refused_with_the_value(raw):
    with pytest.raises(NormalizationError, match="not a valid email address"):
        normalize_email(raw)


@settings(max_examples=300, deadline=None)
@given(raw=ANYTHING)
def test_email_never_raises_anything_else(raw):
    try:
        email = normalize_email(raw)
    except NormalizationError:
        return
    assert email == email.lower().strip()
    assert email == "" or "@" in email
    assert normalize_email(email) == email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("JOHN SMITH", "John Smith"),
        ("mary-jane o'neil", "Mary-Jane O'Neil"),
        ("McDonald", "McDonald"),
        ("  ada\t lovelace ", "Ada Lovelace"),
        ("priya  3rd", "Priya 3rd"),
    ],
)
def test_names(raw, expected):
    assert normalize_name(raw) == expected


def test_split_full_name():
    assert split_full_name("  RAVI kumar SHARMA ") == ("RAVI", "kumar SHARMA")
    assert split_full_name("ravi kumar sharma") == ("Ravi", "Kumar Sharma")
    assert split_full_name("Cher") == ("Cher", "")


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("Maharashtra", "IN", "MH"),
        ("tamil nadu", "in", "TN"),
        ("Tamil Nādu", "IN", "TN"),
        ("ca", "US", "CA"),
        ("California", "US", "CA"),
        ("US-NY", "US", "NY"),
        ("Somewhere", None, "Somewhere"),
        ("", "US", ""),
    ],
)
def test_states(raw, country, expected):
    assert normalize_state(raw, country=country) == expected


def test_unknown_state_names_the_country():
    with pytest.raises(NormalizationError, match="not a state or region of US"):
        normalize_state("Atlantis", country="US")


@pytest.mark.parametrize(("raw", "expected"), [("India", "IN"), ("usa", "US"), ("IND", "IN"), ("gb", "GB"), ("", "")])
def test_countries(raw, expected):
    assert normalize_country(raw) == expected


def test_unknown_country():
    with pytest.raises(NormalizationError, match="not a country"):
        normalize_country("Narnia")


@settings(max_examples=300, deadline=None)
@given(raw=ANYTHING, max_length=st.integers(min_value=1, max_value=300))
def test_clean_text_is_one_tidy_line(raw, max_length):
    text = clean_text(raw, max_length=max_length)
    assert len(text) <= max_length
    assert text == text.strip()
    assert "  " not in text
    assert not any(ch in text for ch in "\n\r\t\x00\u200b")
    assert clean_text(text, max_length=max_length) == text


@settings(max_examples=200, deadline=None)
@given(raw=ANYTHING, country=st.sampled_from(["IN", "US", "GB", "", None]))
def test_state_and_name_never_raise_anything_else(raw, country):
    assert isinstance(normalize_name(raw), str)
    with contextlib.suppress(NormalizationError):
        normalize_state(raw, country=country)


@given(raw=st.text(alphabet=st.characters(max_codepoint=127)), max_length=st.integers(min_value=1, max_value=300))
def test_the_ascii_fast_path_matches_the_unicode_one(raw, max_length):
    import re
    import unicodedata

    from leads.intake.normalize import _visible

    slow = "".join(_visible(ch) for ch in unicodedata.normalize("NFC", raw))
    assert clean_text(raw, max_length=max_length) == re.sub(r"\s+", " ", slow).strip()[:max_length].rstrip()
