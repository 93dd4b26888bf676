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
