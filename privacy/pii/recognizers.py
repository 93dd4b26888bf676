"""fedvlm's own Presidio recognizers: HIPAA Safe Harbor identifiers and retail ids as they appear in text.

Patterns run on normalized text (privacy.pii.normalize). Identifiers introduced by a cue word ("MRN",
"order #", "plate") are matched by value shape after the cue, so any site-specific format is caught;
the cue itself stays, because "MRN <MEDICAL_RECORD_NUMBER>" is harmless and keeps the sentence readable.
"""

from __future__ import annotations

import regex
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

_FLAGS = regex.MULTILINE  # case-sensitive: cues opt into (?i:...), values stay upper-case
_NUMBER_WORD = r"(?:number|num\.?|no\.?|nr\.?|#|id|code|ref(?:erence)?)"
_CONNECT = r"(?:\s*(?:[:#=]|is|was|of)?\s*){1,2}"
# One identifier: tokens of capitals and digits joined by single separators, holding at least one digit.
_VALUE = r"(?<![\w-])[A-Z0-9](?:[A-Z0-9]|[-/.:_ ](?=[A-Z0-9]))*(?![\w])"
_LETTER = r"\p{Lu}"
_NAME_PART = rf"(?:{_LETTER}\.|{_LETTER}[\p{{Ll}}\p{{Lu}}]*(?:['’-]{_LETTER}?[\p{{Ll}}\p{{Lu}}]+)*)"  # or an initial
_PARTICLE = r"(?:de|del|della|der|den|di|da|das|do|dos|du|la|le|van|von|ten|ter|al|el|bin|binti|ibn|bint|y|e|zu|af)"
_NAME = rf"{_NAME_PART}(?:[ ](?:{_PARTICLE}[ ])?{_NAME_PART}){{0,4}}"

CUED_IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "MEDICAL_RECORD_NUMBER": (
        r"MRN",
        r"MR\s?#",
        r"medical\s+record(?:\s+" + _NUMBER_WORD + r")?",
        r"(?:patient|hospital|unit|chart|case|NHS|health(?:care)?)\s+" + _NUMBER_WORD,
        r"accession(?:\s+" + _NUMBER_WORD + r")?",
        r"record\s+" + _NUMBER_WORD,
    ),
    "US_SSN": (r"SSN", r"social\s+security(?:\s+" + _NUMBER_WORD + r")?"),
    "HEALTH_PLAN_ID": (
        r"(?:member|beneficiary|subscriber|insurance|insurer|policy|plan|group|medicare|medicaid|HICN|MBI)\s*"
        + _NUMBER_WORD
        + r"?",
        r"health\s+plan(?:\s+" + _NUMBER_WORD + r")?",
    ),
    "ACCOUNT_NUMBER": (
        r"(?:bank\s+)?account(?:\s+" + _NUMBER_WORD + r")?",
        r"acct\.?(?:\s*" + _NUMBER_WORD + r")?",
        r"a/c",
        r"(?:billing|invoice)(?:\s+" + _NUMBER_WORD + r")?",
    ),
    "LICENSE_OR_CERTIFICATE": (
        r"(?:driver'?s?\s+|driving\s+|medical\s+|professional\s+)?licen[cs]e(?:\s+" + _NUMBER_WORD + r")?",
        r"(?:DEA|NPI|UPIN)(?:\s+" + _NUMBER_WORD + r")?",
        r"(?:birth\s+|death\s+)?certificate(?:\s+" + _NUMBER_WORD + r")?",
        r"cert\.?(?:\s*" + _NUMBER_WORD + r")?",
        r"(?:passport|permit|registration)(?:\s+" + _NUMBER_WORD + r")?",
    ),
    "VEHICLE_ID": (
        r"VIN",
        r"(?:licen[cs]e\s+|number\s+|registration\s+)?plates?(?:\s+" + _NUMBER_WORD + r")?",
        r"reg\.?\s+(?:no\.?|number|plate)",
        r"vehicle(?:\s+" + _NUMBER_WORD + r")?",
    ),
    "DEVICE_ID": (
        r"serial(?:\s+" + _NUMBER_WORD + r")?",
        r"S/N",
        r"SN",
        r"(?:device|implant|pacemaker|pump|monitor)\s+(?:identifier|" + _NUMBER_WORD + r")",
        r"UDI",
        r"IMEI",
    ),
    "CUSTOMER_ID": (
        r"loyalty(?:\s+(?:card|account|member(?:ship)?|programme|program))?(?:\s+" + _NUMBER_WORD + r")?",
        r"(?:customer|client|member(?:ship)?|rewards?|shopper|user)\s*(?:card\s*)?" + _NUMBER_WORD,
    ),
    "ORDER_NUMBER": (
        r"(?:order|purchase|tracking|shipment|parcel|ticket|RMA|return|confirmation|booking|receipt|case)"
        r"(?:\s+" + _NUMBER_WORD + r")?",
        r"ref\.?(?:\s*" + _NUMBER_WORD + r")?",
        r"PO",
    ),
}

CUED_NAME_SCORE = 0.86  # above spaCy's 0.85: where both find a name, the cue's (precise) result is kept
NAME_RECOGNIZER = "fedvlm-person"
NAME_CUES = (
    r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sra|Srta|Herr|Frau|Mme|Mlle|Sig|Sig\.ra|Dott|Sir|Dame|Rev)\.?",
    r"(?i:patient|pt\.?|paciente|patiente|patientin|name|nombre|nom|customer|client|buyer|recipient|addressee)"
    r"(?i:\s+name)?\s*[:,]?",
    r"(?i:signed|dictated|reviewed|referred|seen|examined|transcribed|verified|reported|read|approved)\s+by:?",
    r"(?i:signed|electronically\s+signed|e-signed|countersigned)\s*:",
    r"(?i:attending|physician|surgeon|radiologist|nurse|doctor|consultant|GP|therapist|technician|courier|driver"
    r"|agent|representative|rep|cashier|clerk|manager|contact|guardian|caregiver|carer)\s*[:,]?",
    r"(?i:dear|hi|hello|hey|thanks|thank\s+you|regards|cheers|sincerely|cc|attn)\s*[:,]?",
    r"(?i:wife|husband|spouse|partner|mother|father|son|daughter|brother|sister|next\s+of\s+kin|emergency\s+contact)"
    r"\s*[:,]?",
    r"(?i:I\s+am|I'm|my\s+name\s+is|this\s+is|me\s+llamo|je\s+m'appelle|ich\s+bin|ich\s+heiße)",
    r"(?i:summary|report|note|letter|results?|referral|prescription|invoice|receipt|chart|file|account)\s+(?:for|of)",
)
# A full name opening a sentence, followed by what people do in notes and tickets ("X Y was admitted").
_NOT_A_NAME = r"(?!(?:The|This|That|These|Those|A|An|Our|Your|His|Her|Their|My|Its|No|All|Each|Every)\b)"
_ACTION = (
    r"(?:was|is|has|had|will|would|called|reported|presented|complained|came|arrived|returned|visited|says|said"
    r"|wrote|asked|needs|wants|ordered|bought|denies|states|attended|underwent|received|tested|died|left)\b"
)
SENTENCE_START_NAME = (
    rf"(?:^|(?<=[.!?;:]\s{{1,3}})|(?<=\n)){_NOT_A_NAME}{_NAME_PART}(?:[ ](?:{_PARTICLE}[ ])?{_NAME_PART}){{1,4}}"
    rf"(?=\s+{_ACTION})"
)

_MONTH = (
    r"(?i:jan(?:uary|vier|uar)?|feb(?:ruary|rero|ruar)?|f[ée]vr(?:ier)?|mar(?:ch|zo|s)?|m[äa]rz|apr(?:il)?|abr(?:il)?"
    r"|avr(?:il)?|may(?:o)?|mai|ma[gi]|june?|juni?|jun(?:io)?|juin|july?|juli?|jul(?:io)?|juil(?:let)?|aug(?:ust)?"
    r"|ago(?:sto)?|ao[uû]t|sep(?:t(?:ember)?)?|sept?iembre|okt(?:ober)?|oct(?:ober|ubre|obre)?|nov(?:ember|iembre)?"
    r"|dez(?:ember)?|dec(?:ember)?|dic(?:iembre)?|d[ée]c(?:embre)?)\.?"
)
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?i:st|nd|rd|th|er|\.)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"

DATE_PATTERNS = (
    rf"\b{_DAY}\s+(?:(?i:of|de)\s+)?{_MONTH}(?:,?\s+(?:(?i:de)\s+)?{_YEAR}|\s+'\d\d)?\b",
    rf"\b{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?(?!\s*(?i:mm|cm|kg|mg|ml|g|days?|weeks?|months?|years?|hours?)\b)",
    rf"\b{_MONTH}\s+{_YEAR}\b",
    r"\b(?:0?[1-9]|1[0-2])[/.-]" + _YEAR + r"\b",
    r"\b\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})\b",
    r"\b" + _YEAR + r"[/.-]\d{1,2}[/.-]\d{1,2}\b",
    r"\b" + _YEAR + r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b",
)

_STREET_TYPE = (
    r"(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|ter|crescent"
    r"|cres|close|square|sq|highway|hwy|parkway|pkwy|circle|cir|trail|row|mews|gardens|grove|hill|walk|alley"
    r"|plaza|quay|wharf)\.?"
)
_STREET_WORD = r"(?:\p{Lu}[\p{L}'’.-]*|\d{1,3}(?i:st|nd|rd|th))"
ADDRESS_PATTERNS = (
    # 221B Baker Street, 12 O'Connell St., 4500 N 32nd Ave (optionally with unit)
    rf"\b\d{{1,6}}[A-Za-z]?(?:-\d{{1,4}})?,?\s+(?:(?:[NSEW]|North|South|East|West)\.?\s+)?"
    rf"(?:{_STREET_WORD}\s+){{1,4}}{_STREET_TYPE}(?:,?\s+(?i:apt|apartment|unit|suite|ste|flat|#)\.?\s*[\w-]+)?",
    # 12 Kingsway, 1560 Broadway, 4 Southgate
    r"\b\d{1,6}[A-Za-z]?\s+(?:\p{Lu}[\p{L}'’.-]*\s+){0,2}\p{Lu}\p{Ll}+(?:way|gate)\b",
    # Rue de la Paix 12, Calle Mayor 5, Via Roma 10, Hauptstraße 12, Kerkstraat 3
    r"\b(?i:rue|avenue|boulevard|calle|avenida|via|viale|piazza|rua|praça|plaza|ulica|ul\.)\s+"
    r"(?:(?i:de|del|della|da|do|la|le|des|du|dos|das)\s+)*(?:\p{Lu}[\p{L}'’-]*\s+){1,3}\d{1,5}[A-Za-z]?\b",
    r"\b(?:de\s+)?(?:la\s+)?(?:\p{Lu}[\p{L}'’-]*\s+)?(?:\p{Lu}[\p{L}'’-]*)(?i:gasse|straße|strasse|str\.|weg|platz|allee"
    r"|damm|ring|straat|laan|gracht|plein|vej|gatan|gata|veien)\s+\d{1,5}[A-Za-z]?\b",
    r"\b(?i:P\.?\s?O\.?\s+Box|Postfach|Apartado)\s+\d{1,6}\b",
)

POSTAL_PATTERNS = (
    r"(?<=\b[A-Z]{2}\s{1,2})\d{5}(?:-\d{4})?\b",  # US ZIP after a state code
    r"(?<=(?i:zip|postal|post\s+code|postcode|CP|PLZ)\s*(?:code)?\s*[:#]?\s*)[A-Z0-9]{2,5}(?:[ -][A-Z0-9]{3,4})?\b",
    r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b",  # UK postcode
    r"\b[ABCEGHJ-NPRSTVXY]\d[A-Z][ -]?\d[A-Z]\d\b",  # Canadian postal code
    r"\b\d{5}(?:-\d{4})?(?=\s*,?\s*(?:USA|US|U\.S\.A?\.?)\b)",
    r"(?<=,\s*)\d{4,5}(?=\s+\p{Lu}\p{Ll}+)",  # "..., 75008 Paris" / "..., 10115 Berlin"
)

CITY_PATTERNS = (
    r"\b\p{Lu}[\p{Ll}'’-]+(?:\s\p{Lu}[\p{Ll}'’-]+){0,2}(?=,\s*[A-Z]{2}\b\s+\d{5})",  # Springfield, IL 62704
    r"(?<=,\s*\d{4,5}\s+)\p{Lu}[\p{Ll}'’-]+(?:[\s-]\p{Lu}[\p{Ll}'’-]+){0,2}",  # 75008 Paris
    r"(?<=(?i:lives\s+in|living\s+in|resident\s+of|resides\s+in|from\s+the\s+town\s+of|city\s*:|town\s*:)\s+)"
    r"\p{Lu}[\p{Ll}'’-]+(?:[\s-]\p{Lu}[\p{Ll}'’-]+){0,2}",
)

# Phone and fax numbers in national and international formats (phonenumbers' per-region matching was
# the analyzer's largest cost); spaced digits ("6 1 7 5 5 5 ...") fall to ID_NUMBER.
PHONE_PATTERNS = (
    r"(?<![\w+])(?:\+|00)\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){2,4}(?!\w)",
    r"(?<![\w(])\(\d{2,5}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?!\w)",
    r"(?<![\w-])\d{3}[\s.-]\d{3}[\s.-]\d{4}(?![\w-])",
    r"(?<![\w-])0\d{2,4}[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?![\w-])",
)

AGE_PATTERNS = (
    r"\b(?:9\d|1[0-1]\d)(?=[- ]?(?i:years?[- ]old|y/?o\b|yrs?\b|-year-old|year-old|ans\b|años\b|jahre\b))",
    r"(?<=(?i:aged?|age:)\s*)(?:9\d|1[0-1]\d)\b",
)

# Any remaining identifier-shaped token: five or more digits (with letters or separators), not an amount or measure.
_UNIT = r"(?i:mm|cm|m|km|mg|g|kg|ml|l|mmhg|bpm|hz|khz|mhz|ghz|gb|mb|tb|mah|w|kw|v|mph|kcal|steps|lbs?|oz|px|dpi)"
# Digits spaced or punctuated apart to dodge filters: "7 7 1 . 6 8 3 . 4 8 7 9".
SPACED_DIGITS_PATTERN = r"(?<![\w])\d(?:[\s.\-/]{1,3}\d){5,}(?![\w])"
ID_NUMBER_PATTERN = (
    r"(?<![\w$€£¥.,-])(?:[A-Z]{1,4}-?)?\d(?:[\dA-Z]|[-/. ](?=[\dA-Z]))*"
    rf"(?<=\d[\dA-Z]*)(?![\w])(?!\s?{_UNIT}\b)(?!\s?%)"
)


class _DigitCountRecognizer(PatternRecognizer):
    """A pattern recognizer whose matches must hold at least min_digits digits."""

    def __init__(self, min_digits: int, **kwargs) -> None:
        super().__init__(global_regex_flags=_FLAGS, supported_language="en", **kwargs)
        self.min_digits = min_digits

    def validate_result(self, pattern_text: str) -> bool | None:
        """Reject matches with too few digits (words after a cue, years, small counts); None keeps the score."""
        return None if sum(character.isdigit() for character in pattern_text) >= self.min_digits else False


class CuedIdentifierRecognizer(EntityRecognizer):
    """Identifiers after a cue word ("MRN", "order #", "plate"), every type in one regex pass over the text.

    Each cue alternative is a named group, so the group that matched names the entity; the value that
    follows is reported (the cue stays in the text).
    """

    SCORE = 0.9
    MIN_DIGITS = 2

    def __init__(self) -> None:
        self.entities = list(CUED_IDENTIFIERS)
        cues = "|".join(
            f"(?P<e{index}>{'|'.join(CUED_IDENTIFIERS[entity])})" for index, entity in enumerate(self.entities)
        )
        self.pattern = regex.compile(rf"(?i:\b(?:{cues})){_CONNECT}(?P<value>{_VALUE})", _FLAGS)
        super().__init__(supported_entities=self.entities, name="fedvlm-cued-identifiers", supported_language="en")

    def load(self) -> None:
        """Nothing to load: the regex is compiled in __init__."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        """Values after cues, for the requested entity types."""
        results = []
        for match in self.pattern.finditer(text):
            groups = match.groupdict()
            entity = next(name for index, name in enumerate(self.entities) if groups[f"e{index}"] is not None)
            value = groups["value"]
            if entity in entities and sum(character.isdigit() for character in value) >= self.MIN_DIGITS:
                start, end = match.span("value")
                results.append(RecognizerResult(entity, start, end, self.SCORE, self._metadata()))
        return results

    def _metadata(self) -> dict:
        return {RecognizerResult.RECOGNIZER_NAME_KEY: self.name, RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}


def _patterns(entity: str, regexes: tuple[str, ...], score: float) -> list[Pattern]:
    return [Pattern(f"{entity}-{index}", expression, score) for index, expression in enumerate(regexes)]


def pattern_recognizers() -> list[PatternRecognizer]:
    """Names after cues, dates, street addresses, postal codes, cities, ages over 89, phone numbers."""
    recognizers = [
        PatternRecognizer(
            supported_entity=entity,
            name=f"fedvlm-{entity.lower()}",
            patterns=_patterns(entity, regexes, score),
            global_regex_flags=_FLAGS,
            supported_language="en",
        )
        for entity, regexes, score in (
            (
                "PERSON",
                (*(rf"(?<=(?:^|[\s(\[\"'])(?:{cue})\s*){_NAME}" for cue in NAME_CUES), SENTENCE_START_NAME),
                CUED_NAME_SCORE,
            ),
            ("DATE", DATE_PATTERNS, 0.75),
            ("ADDRESS", ADDRESS_PATTERNS, 0.8),
            ("POSTAL_CODE", POSTAL_PATTERNS, 0.7),
            ("LOCATION", CITY_PATTERNS, 0.7),
            ("AGE_OVER_89", AGE_PATTERNS, 0.8),
            ("PHONE_NUMBER", PHONE_PATTERNS, 0.7),
        )
    ]
    recognizers.append(
        _DigitCountRecognizer(
            min_digits=5,
            supported_entity="ID_NUMBER",
            name="fedvlm-id_number",
            patterns=[Pattern("ID_NUMBER", ID_NUMBER_PATTERN, 0.4), Pattern("SPACED", SPACED_DIGITS_PATTERN, 0.4)],
        )
    )
    return recognizers
