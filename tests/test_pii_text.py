"""Text PII: one case per entity type, harmless wording kept, obfuscation, non-English text, operators, fail-closed."""

from __future__ import annotations

import re

import pytest

from privacy.pii.normalize import normalize_text
from privacy.pii.settings import PiiSettings
from privacy.pii.text import KnownTerms, PiiUnavailable, TextFilter

# (text, the identifying value inside it, the entity type it must be reported as)
CASES = [
    ("Seen today: Mrs. Ngozi Adeyemi-Okafor, follow-up booked.", "Ngozi Adeyemi-Okafor", "PERSON"),
    ("The scan was reviewed by Siobhán O'Connor-Ní Bhriain.", "Siobhán O'Connor-Ní Bhriain", "PERSON"),
    ("She moved here from Chicago last spring.", "Chicago", "LOCATION"),
    ("Home address: 1742 Evergreen Terrace, apt 3.", "1742 Evergreen Terrace", "ADDRESS"),
    ("Send the parcel to Rue du Faubourg Saint-Honoré 55, please.", "Faubourg Saint-Honoré 55", "ADDRESS"),
    ("Lives in Portland, OR 97205 with her sister.", "97205", "POSTAL_CODE"),
    ("Born on 14 March 1957 in a small village.", "14 March 1957", "DATE"),
    ("Admitted 2023-11-02 after a fall.", "2023-11-02", "DATE"),
    ("The patient, a 94-year-old man, reported pain.", "94", "AGE_OVER_89"),
    ("Call the ward on (617) 555-0134 tomorrow.", "(617) 555-0134", "PHONE_NUMBER"),
    ("Results were emailed to k.tanaka@hospital.example.jp today.", "k.tanaka@hospital.example.jp", "EMAIL_ADDRESS"),
    ("Portal link https://portal.example.org/patients/88412 expired.", "portal.example.org/patients/88412", "URL"),
    ("Login came from 192.168.14.201 at night.", "192.168.14.201", "IP_ADDRESS"),
    ("The tablet's MAC is 00:1A:2B:3C:4D:5E.", "00:1A:2B:3C:4D:5E", "MAC_ADDRESS"),
    ("SSN 078-05-1120 is on the form.", "078-05-1120", "US_SSN"),
    ("Paid with 4111 1111 1111 1111 at the till.", "4111 1111 1111 1111", "CREDIT_CARD"),
    ("Refund to GB82 WEST 1234 5698 7654 32 requested.", "GB82 WEST 1234 5698 7654 32", "IBAN_CODE"),
    ("MRN: 00-4471-229 was merged.", "00-4471-229", "MEDICAL_RECORD_NUMBER"),
    ("Medical record no. A7731902 is closed.", "A7731902", "MEDICAL_RECORD_NUMBER"),
    ("Member ID XJH 4471 9920 on the insurance card.", "XJH 4471 9920", "HEALTH_PLAN_ID"),
    ("Acct # 0012-3344-55 is overdue.", "0012-3344-55", "ACCOUNT_NUMBER"),
    ("Driver's licence number D123-4567-8901 was scanned.", "D123-4567-8901", "LICENSE_OR_CERTIFICATE"),
    ("VIN 1HGCM82633A004352 belongs to the ambulance.", "1HGCM82633A004352", "VEHICLE_ID"),
    ("Licence plate KX19 ZRT was seen at the entrance.", "KX19 ZRT", "VEHICLE_ID"),
    ("Pacemaker serial number PM-88231-K7 checked.", "PM-88231-K7", "DEVICE_ID"),
    ("Loyalty card LC-5520-7781 earned points.", "LC-5520-7781", "CUSTOMER_ID"),
    ("Order #A-7734-99812 arrived late.", "A-7734-99812", "ORDER_NUMBER"),
    ("Reference 55120-88713-2 appears on every page.", "55120-88713-2", "ID_NUMBER"),
    ("Prescriber licence BB1388568 on file.", "BB1388568", "MEDICAL_LICENSE"),
    ("NHS 943 476 5919 is on the referral.", "943 476 5919", "UK_NHS"),
]

HARMLESS = [
    "findings: a 4 mm nodule in the left lower lobe, stable for 3 weeks.",
    "Pain in the right knee for 2 days; swelling of the medial meniscus.",
    "The 250 ml mug holds 8 oz and the lamp is 40 cm tall.",
    "Follow up in 6 months with a chest CT and an MRI of the lumbar spine.",
    "the red lamp arrived damaged after 5 days in transit.",
    "Blood pressure 120/80 mmHg, heart rate 72 bpm, temperature 37.2 degrees.",
]


@pytest.fixture(scope="module")
def text_filter() -> TextFilter:
    return TextFilter(PiiSettings())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.mark.parametrize(("text", "value", "entity"), CASES, ids=[case[2] for case in CASES])
def test_each_entity_type_is_found_and_replaced(text_filter, text, value, entity):
    [redaction] = text_filter.redact([text])
    assert value not in redaction.text
    if _digits(value):
        assert _digits(value) not in _digits(redaction.text)
    assert redaction.found[entity] >= 1
    assert f"<{entity}>" in redaction.text


def test_harmless_clinical_and_product_wording_is_kept(text_filter):
    assert [r.text for r in text_filter.redact(HARMLESS)] == [normalize_text(text) for text in HARMLESS]


@pytest.mark.parametrize(
    "text",
    [
        "MRN ４４７１２２９０ on file",  # fullwidth digits
        "MRN 4471\u200b2290 on file",  # zero-width space inside the number
        "MRN ٤٤٧١٢٢٩٠ on file",  # Arabic-Indic digits
        "call 6 1 7 5 5 5 0 1 3 4 now",  # spaced digits
    ],
)
def test_obfuscated_identifiers_are_found(text_filter, text):
    [redaction] = text_filter.redact([text])
    assert len(_digits(redaction.text)) == 0, redaction.text
    assert sum(redaction.found.values()) >= 1


def test_non_english_text_still_meets_the_pattern_recognizers(text_filter):
    text = "Paciente: José Núñez García, tel. +34 612 345 678, nacido el 12 de marzo de 1961."
    [redaction] = text_filter.redact([text])
    for value in ("José", "Núñez", "612 345 678", "12 de marzo de 1961"):
        assert value not in redaction.text


def test_known_terms_are_redacted_wherever_they_recur(text_filter):
    [bare] = text_filter.redact(["thanks to chidi for the help; Chidi Okeke was there."])
    known = KnownTerms({"Chidi Okeke"})
    [propagated] = text_filter.redact(["Okeke signed the form."], known)
    assert "Okeke" not in propagated.text and propagated.found["PERSON"] == 1
    assert "Chidi Okeke" not in bare.text


def test_mask_and_hash_operators(monkeypatch):
    text = "Patient Anna Kowalska, MRN 4471-2290."
    masked = TextFilter(PiiSettings(operators={"PERSON": "mask"})).redact([text])[0].text
    assert "Anna" not in masked and "*" * len("Anna Kowalska") in masked
    monkeypatch.setenv("FEDVLM_PII_SECRET", "a-site-secret-of-32-bytes-length")
    hashed = TextFilter(PiiSettings(operators={"PERSON": "hash"})).redact([text, text])
    assert hashed[0].text == hashed[1].text and "Kowalska" not in hashed[0].text
    monkeypatch.setenv("FEDVLM_PII_SECRET", "another-site-secret-of-32-bytes!")
    assert TextFilter(PiiSettings(operators={"PERSON": "hash"})).redact([text])[0].text != hashed[0].text


def test_hash_without_a_site_secret_fails_closed(monkeypatch):
    monkeypatch.delenv("FEDVLM_PII_SECRET", raising=False)
    with pytest.raises(PiiUnavailable, match="FEDVLM_PII_SECRET"):
        TextFilter(PiiSettings(operators={"PERSON": "hash"}))


def test_drop_operator_marks_the_text(text_filter):
    dropping = TextFilter(PiiSettings(operators={"US_SSN": "drop"}))
    [redaction] = dropping.redact(["SSN 078-05-1120 on the form"])
    assert redaction.drop and redaction.text == ""


def test_a_missing_spacy_model_fails_closed():
    with pytest.raises(PiiUnavailable, match="not installed"):
        TextFilter(PiiSettings(spacy_model="en_core_web_does_not_exist"))
