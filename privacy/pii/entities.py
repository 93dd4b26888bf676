"""The entity types the PII filter reports, and what may happen to each."""

from __future__ import annotations

from typing import Literal

# Fixed, so every site's metrics carry the same keys (Flower requires identical MetricRecord keys).
ENTITY_TYPES: tuple[str, ...] = (
    "PERSON",
    "LOCATION",
    "ADDRESS",
    "POSTAL_CODE",
    "DATE",
    "AGE_OVER_89",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "URL",
    "IP_ADDRESS",
    "MAC_ADDRESS",
    "US_SSN",
    "US_ITIN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "MEDICAL_LICENSE",
    "UK_NHS",
    "MEDICAL_RECORD_NUMBER",
    "HEALTH_PLAN_ID",
    "ACCOUNT_NUMBER",
    "LICENSE_OR_CERTIFICATE",
    "VEHICLE_ID",
    "DEVICE_ID",
    "CUSTOMER_ID",
    "ORDER_NUMBER",
    "ID_NUMBER",
)

Operator = Literal["placeholder", "mask", "hash", "drop"]

# Digits an entity needs at the least: a text with fewer is not searched for it (a cheap pre-screen).
MIN_DIGITS: dict[str, int] = {
    "PHONE_NUMBER": 7,
    "CREDIT_CARD": 12,
    "US_SSN": 9,
    "US_ITIN": 9,
    "IBAN_CODE": 8,
    "UK_NHS": 10,
    "MEDICAL_LICENSE": 6,
    "IP_ADDRESS": 4,
    "ID_NUMBER": 5,
    "POSTAL_CODE": 2,
    **dict.fromkeys(("DATE", "AGE_OVER_89", "ADDRESS"), 1),
    **dict.fromkeys(("MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID", "ACCOUNT_NUMBER", "LICENSE_OR_CERTIFICATE"), 2),
    **dict.fromkeys(("VEHICLE_ID", "DEVICE_ID", "CUSTOMER_ID", "ORDER_NUMBER"), 2),
}
