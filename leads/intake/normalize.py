"""Normalizers for what lead sources send: phones to E.164, emails, names, state codes and free text.

Each normalizer takes anything (sources send numbers, nulls, lists and odd unicode) and either returns a clean
value, ``""`` for an empty input, or raises :class:`NormalizationError` with a message a supplier can act on.
None of them touches the network: email domains are checked for syntax, not DNS.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email


class NormalizationError(ValueError):
    """A value cannot be made valid; ``str(error)`` says why, in words for the sender."""


_WHITESPACE = re.compile(r"\s+")
MAX_TEXT_LENGTH = 255


def clean_text(value: Any, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Any value as one tidy line: NFC-normalized, format characters and control characters removed, runs of
    whitespace collapsed, trimmed and cut to ``max_length``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "yes" if value else "no"
    text = str(value)
    if text.isascii():  # most of what arrives: no format characters, nothing to compose, one table lookup
        text = text.translate(_ASCII_CONTROLS_TO_SPACE)
    else:
        text = "".join(_visible(ch) for ch in unicodedata.normalize("NFC", text))
    return _WHITESPACE.sub(" ", text).strip()[:max_length].rstrip()


_ASCII_CONTROLS_TO_SPACE = dict.fromkeys([*range(32), 127], " ")


def _visible(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Cf":  # zero-width and other format characters that copy-paste leaves inside words
        return ""
    if category[0] == "C":  # control, surrogate, private-use and unassigned characters separate words
        return " "
    return ch


def normalize_name(value: Any) -> str:
    """A person's or company's name, tidied; ALL-CAPS or all-lowercase input gets title case (``JOHN o'neil`` stays
    as typed only when it mixes cases, because then the sender chose it)."""
    name = clean_text(value, max_length=150)
    if name and (name.isupper() or name.islower()):
        name = " ".join(_title_word(word) for word in name.split(" "))
    return name


def _title_word(word: str) -> str:
    # "o'neil" → "O'Neil", "jean-luc" → "Jean-Luc"; str.title() would also turn "3rd" into "3Rd".
    return re.sub(r"(^|[-'’])(\w)", lambda m: m.group(1) + m.group(2).upper(), word.lower())


def split_full_name(full_name: str) -> tuple[str, str]:
    """First name and the rest, for sources that send one field."""
    parts = normalize_name(full_name).split(" ", 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def normalize_email(value: Any) -> str:
    """A syntactically valid address, lowercased; ``""`` when empty. No DNS lookups."""
    raw = clean_text(value, max_length=320)
    if not raw:
        return ""
    try:
        result = validate_email(raw, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise NormalizationError(f"“{raw}” is not a valid email address: {error}") from None
    return result.normalized.lower()


def normalize_phone(value: Any, *, region: str | None) -> str:
    """A valid phone number in E.164 (``+919876543210``); ``""`` when empty.

    Numbers without a country code are read in ``region`` (the organization's default phone region). Local
    prefixes sources add (``0``, ``00``, ``+`` with spaces, dashes, dots, brackets) are understood.
    """
    raw = clean_text(value, max_length=64)
    if not raw:
        return ""
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        raise NormalizationError(
            f"“{raw}” is not a phone number"
            + ("" if region else "; send it with its country code, e.g. +14155550123")
            + "."
        ) from None
    if not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_number(number) or region or "any country"
        raise NormalizationError(f"“{raw}” is not a valid phone number for {where}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).lower())


@functools.cache
def _subdivision_index(country: str) -> dict[str, str]:
    """Folded names and codes of a country's subdivisions → their ISO 3166-2 code without the country prefix."""
    index: dict[str, str] = {}
    for subdivision in pycountry.subdivisions.get(country_code=country) or []:
        short = subdivision.code.split("-", 1)[1]
        index.setdefault(_fold(short), short)
        index.setdefault(_fold(subdivision.name), short)
    return index


def normalize_state(value: Any, *, country: str | None) -> str:
    """The ISO 3166-2 subdivision code (``CA``, ``MH``) for a state name or code in ``country``; ``""`` when empty.

    A value that is no subdivision of a known country is an error; without a country the tidied text is kept.
    """
    raw = clean_text(value, max_length=100)
    if not raw:
        return ""
    country = (country or "").upper()
    if "-" in raw and raw.split("-", 1)[0].upper() == country:
        raw = raw.split("-", 1)[1]
    index = _subdivision_index(country) if country else {}
    if not index:
        return raw
    code = index.get(_fold(raw))
    if code is None:
        raise NormalizationError(f"“{raw}” is not a state or region of {country}.")
    return code


def normalize_country(value: Any, *, default: str = "") -> str:
    """ISO 3166-1 alpha-2 for a country name or code (``India``, ``IND``, ``in``); ``default`` when empty."""
    raw = clean_text(value, max_length=100)
    if not raw:
        return default
    try:
        return pycountry.countries.lookup(raw).alpha_2
    except LookupError:
        try:
            return pycountry.countries.search_fuzzy(raw)[0].alpha_2
        except LookupError:
            raise NormalizationError(f"“{raw}” is not a country.") from None
