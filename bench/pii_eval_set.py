"""A labelled PII evaluation set, written apart from the demo generator (other names, formats and templates).

Each text carries its PII values (with their entity type) and its harmless wording (durations, sizes,
anatomy, product names) that a filter must keep. Some texts are obfuscated (spaced or unicode digits,
zero-width characters) the way people and systems mangle identifiers.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

FIRST = (
    "Aoife", "Bartholomew", "Chidinma", "Dagmar", "Eleftheria", "Farrukh", "Guðrún", "Hyun-woo", "Ifeoma",
    "Joaquín", "Kalani", "Leilani", "Mateusz", "Nasrin", "Olumide", "Paavo", "Radhika", "Søren", "Thandiwe",
    "Ulrike", "Vikram", "Wiremu", "Xochitl", "Yevgenia", "Zeynep", "Anaïs", "Bolat", "Célestine", "Darius",
    "Esperanza", "Fionnuala", "Gulnara", "Haruto", "Ilse", "Jae-won", "Kwabena", "Ludmila", "Marisol", "Nnamdi",
    "Océane", "Pita", "Rustam", "Sigrún", "Tenzin", "Umaima", "Valtteri", "Wanjiru", "Yaw", "Zoltán", "Émile",
)  # fmt: skip
LAST = (
    "Ó Briain", "d'Alembert", "MacGillivray", "Nwachukwu", "Van Rensburg", "Abdul-Rahman", "Bañuelos",
    "Szczepański", "Ólafsdóttir", "Tanaka-Wright", "Oyelaran", "Kim", "Đặng", "Al-Farsi", "Hernández-Ruiz",
    "Mäkinen", "Petrović", "Çelik", "Ngcobo", "Achterberg", "Kovalenko", "Ferreira da Silva", "Rasmussen",
    "Okafor", "Grünewald", "Takahashi", "Mwangi", "Lefèvre", "Zielińska", "O'Donoghue", "Bhattacharya",
    "Kahananui", "Sandoval", "Halvorsen", "Ivanišević", "Adeyemi", "Quispe", "Nakashima", "Jovanović", "Delacroix",
)  # fmt: skip
STREETS = ("Evergreen Terrace", "Baker Street", "Sycamore Avenue", "Wellington Road", "Orchard Lane", "Birch Drive")
CITIES = (("Portland", "OR"), ("Dayton", "OH"), ("Boulder", "CO"), ("Tacoma", "WA"), ("Macon", "GA"))
MONTHS = ("January", "March", "June", "August", "October", "December", "Feb", "Sept", "Nov")
PRODUCTS = ("Galaxy S21", "ThinkPad X1 Carbon", "Air Max 90", "iPhone 13 Pro", "Instant Pot Duo", "Kindle Paperwhite")
DURATIONS = ("for 3 weeks", "for 2 days", "over 6 months", "for 10 minutes", "since last year", "for 48 hours")
SIZES = ("4 mm", "2.5 cm", "250 ml", "12 kg", "size 42", "15 inch")
ANATOMY = ("left lower lobe", "medial meniscus", "right kidney", "lumbar spine", "anterior cruciate ligament")


@dataclass
class LabelledText:
    """A text, its PII values (entity type, value, value as written), and the harmless phrases it holds."""

    text: str
    pii: list[tuple[str, str, str]] = field(default_factory=list)
    harmless: list[str] = field(default_factory=list)


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(count))


def _letters(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(count))


def _value(rng: random.Random, entity: str, names: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    """One identifier of the type, in one of its many real-world formats."""
    d, L = (lambda n: _digits(rng, n)), (lambda n: _letters(rng, n))
    formats = {
        "PERSON": lambda: f"{rng.choice(names[0])} {rng.choice(names[1])}",
        "PHONE_NUMBER": lambda: rng.choice([
            f"({d(3)}) {d(3)}-{d(4)}", f"{d(3)}-{d(3)}-{d(4)}", f"{d(3)}.{d(3)}.{d(4)}", f"+44 20 {d(4)} {d(4)}",
            f"+49 30 {d(6)}", f"+1-{d(3)}-{d(3)}-{d(4)}", f"0{d(3)} {d(3)} {d(4)}",
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
        ]),
        "EMAIL_ADDRESS": lambda: rng.choice([
            f"{L(1).lower()}.{rng.choice(LAST).split()[0].lower().replace(chr(39), '')}@example.org",
            f"patient{d(4)}@mail.example.com", f"{L(3).lower()}_{d(2)}@shop.example.net",
        ]),
        "DATE": lambda: rng.choice([
            f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1930, 2020)}",
            f"{rng.randint(1, 28)}.{rng.randint(1, 12):02d}.{rng.randint(1930, 2020)}",
            f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1930, 2020)}",
            f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1930, 2020)}",
            f"{rng.choice(MONTHS)} {rng.randint(2, 28)}th", f"{rng.choice(MONTHS)} {rng.randint(1990, 2024)}",
        ]),
        "ADDRESS": lambda: rng.choice([
            f"{rng.randint(2, 9999)} {rng.choice(STREETS)}", f"{rng.randint(2, 99)}B {rng.choice(STREETS)}",
            f"{rng.randint(100, 9000)} N {rng.randint(2, 99)}th Ave", f"PO Box {d(4)}",
            f"Hauptstraße {rng.randint(2, 200)}", f"Calle Mayor {rng.randint(2, 90)}",
        ]),
        "POSTAL_CODE": lambda: rng.choice([f"{d(5)}", f"{d(5)}-{d(4)}"]),
        "MEDICAL_RECORD_NUMBER": lambda: rng.choice([
            f"{d(2)}-{d(3)}-{d(3)}", d(8), f"MRN{d(7)}", f"{L(1)}{d(7)}", f"{L(1)}-{d(3)}-{d(3)}", f"{d(4)} {d(4)}",
        ]),
        "HEALTH_PLAN_ID": lambda: rng.choice([f"{L(3)}{d(9)}", f"{L(1)}{d(4)} {d(5)}", f"{d(3)}-{d(2)}-{d(4)}-{L(1)}"]),
        "ACCOUNT_NUMBER": lambda: rng.choice([f"{d(4)}-{d(4)}-{d(2)}", d(10), f"AC-{d(6)}"]),
        "LICENSE_OR_CERTIFICATE": lambda: rng.choice(
            [f"{L(1)}{d(3)}-{d(4)}-{d(4)}", f"{L(2)} {d(6)}", f"CERT-{d(4)}-{d(5)}"]
        ),
        "VEHICLE_ID": lambda: rng.choice(
            [f"1{L(2)}{d(1)}{L(2)}{d(2)}{d(1)}{L(1)}{d(6)}", f"{L(2)}{d(2)} {L(3)}", f"{d(1)}{L(3)}{d(3)}"]
        ),
        "DEVICE_ID": lambda: rng.choice([f"SN-{d(5)}-{L(1)}{d(1)}", f"{L(2)}{d(4)}{L(1)}", f"(01){d(14)}"]),
        "US_SSN": lambda: rng.choice(
            [f"{rng.randint(100, 665)}-{d(2)}-{d(4)}", f"{rng.randint(100, 665)} {d(2)} {d(4)}"]
        ),
        "CREDIT_CARD": lambda: rng.choice(["4111 1111 1111 1111", "5500-0000-0000-0004", "3782 822463 10005"]),
        "CUSTOMER_ID": lambda: rng.choice([f"LC-{d(4)}-{d(4)}", f"C{d(8)}", f"{L(2)}{d(6)}"]),
        "ORDER_NUMBER": lambda: rng.choice([f"{L(1)}-{d(4)}-{d(5)}", f"ORD-{rng.randint(2019, 2025)}-{d(6)}", d(9)]),
        "IBAN_CODE": lambda: rng.choice(["GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00"]),
        "IP_ADDRESS": lambda: ".".join(str(rng.randint(low, 254)) for low in (11, 0, 0, 1)),
        "URL": lambda: f"https://portal.example.org/{rng.choice(['p', 'orders', 'chart'])}/{d(6)}",
        "AGE_OVER_89": lambda: str(rng.randint(90, 104)),
    }  # fmt: skip
    return formats[entity]()


# Templates: {E:TYPE} is a PII value, {H:kind} a harmless phrase. Clinical notes, retail reviews and tickets.
TEMPLATES = (
    "Pt {E:PERSON}, DOB {E:DATE}, MRN {E:MEDICAL_RECORD_NUMBER}: pain in the {H:anatomy} {H:duration}.",
    "{E:PERSON} was admitted on {E:DATE} with a {H:size} mass near the {H:anatomy}.",
    "Discharge summary for {E:PERSON} (medical record number {E:MEDICAL_RECORD_NUMBER}); follow up {H:duration}.",
    "Referred by Dr. {E:PERSON}. Contact the family at {E:PHONE_NUMBER} or {E:EMAIL_ADDRESS}.",
    "Home: {E:ADDRESS}, {E:POSTAL_CODE}. Insurance member ID {E:HEALTH_PLAN_ID}.",
    "The {E:AGE_OVER_89}-year-old patient reported swelling of the {H:anatomy} {H:duration}.",
    "Billing: account no. {E:ACCOUNT_NUMBER}, SSN {E:US_SSN}, seen on {E:DATE}.",
    "Pacemaker serial number {E:DEVICE_ID} checked; lead impedance stable {H:duration}.",
    "Ambulance VIN {E:VEHICLE_ID} logged at {E:DATE}; crew licence {E:LICENSE_OR_CERTIFICATE}.",
    "Portal login from {E:IP_ADDRESS} at night; chart link {E:URL}.",
    "Emergency contact: {E:PERSON}, tel {E:PHONE_NUMBER}.",
    "Hi, this is {E:PERSON}. My {H:product} arrived broken, order #{E:ORDER_NUMBER}.",
    "Loyalty card {E:CUSTOMER_ID} was charged twice for the {H:product} ({H:size}).",
    "Please refund {E:CREDIT_CARD}; the {H:product} stopped working {H:duration}.",
    "Ship the replacement to {E:ADDRESS}, {E:POSTAL_CODE}, attn {E:PERSON}.",
    "Customer {E:PERSON} ({E:EMAIL_ADDRESS}) says the {H:product} is great, {H:size} is perfect.",
    "Wire the refund to {E:IBAN_CODE} for order {E:ORDER_NUMBER}.",
    "Thanks {E:PERSON}! Your {H:product} ships {H:duration}.",
    "License plate {E:VEHICLE_ID} was parked at the loading dock {H:duration}.",
    "{E:PERSON} called about ticket {E:ORDER_NUMBER} from {E:PHONE_NUMBER}.",
    "Paciente {E:PERSON}, nacido el {E:DATE}, teléfono {E:PHONE_NUMBER}.",
    "Der Patient {E:PERSON} wohnt in der {E:ADDRESS}, Versichertennummer {E:HEALTH_PLAN_ID}.",
)

# Written after the recognizers were tuned on TEMPLATES and never used to tune them: the held-out figures.
HELDOUT_TEMPLATES = (
    "Note: {E:PERSON} presented with shortness of breath {H:duration}; SpO2 low.",
    "Radiology read for {E:PERSON}, accession {E:MEDICAL_RECORD_NUMBER}: {H:size} nodule in the {H:anatomy}.",
    "Phone consult with {E:PERSON} on {E:DATE}; callback {E:PHONE_NUMBER}.",
    "Mrs {E:PERSON} lives at {E:ADDRESS} ({E:POSTAL_CODE}) and brings her own {H:product}.",
    "We charged card {E:CREDIT_CARD} for the {H:product}; receipt {E:ORDER_NUMBER}.",
    "Return label for {E:PERSON}: RMA {E:ORDER_NUMBER}, loyalty {E:CUSTOMER_ID}.",
    "My husband {E:PERSON} ordered the {H:product} {H:duration} and it's already broken!",
    "Device ID {E:DEVICE_ID} (insulin pump) paired with phone {E:PHONE_NUMBER}.",
    "Policy number {E:HEALTH_PLAN_ID} denied the claim dated {E:DATE}.",
    "Signed: {E:PERSON}, MD, licence {E:LICENSE_OR_CERTIFICATE}.",
    "{E:PERSON} ({E:AGE_OVER_89} y/o) fell at home {H:duration}; CT of the {H:anatomy} normal.",
    "Email {E:EMAIL_ADDRESS} bounced; account {E:ACCOUNT_NUMBER} frozen.",
    "Vehicle plate {E:VEHICLE_ID} towed from the clinic car park.",
    "Login {E:IP_ADDRESS}, session {E:URL}.",
    "Kind regards, {E:PERSON}",
    "Dear {E:PERSON}, your {H:product} ({H:size}) is ready for pickup.",
    "SSN on file: {E:US_SSN}; IBAN {E:IBAN_CODE}.",
)
HELDOUT_FIRST = (
    "Amadou", "Birgitta", "Cheng", "Dilnoza", "Eero", "Folake", "Gwenaëlle", "Hamza", "Itzel", "Jovana", "Kaito",
    "Lwazi", "Mirela", "Nikolaos", "Oren", "Pilar", "Rahel", "Sekou", "Tuğba", "Ugne", "Vusumuzi", "Wen", "Yara",
)  # fmt: skip
HELDOUT_LAST = (
    "Diallo", "Lindgren", "Wu", "Yusupova", "Virtanen", "Adebayo", "Le Gall", "Siddiqui", "Marković", "Sato",
    "Dlamini", "Popescu", "Christodoulou", "Ben-David", "Ortega y Gasset", "Haile", "Traoré", "Öztürk",
    "Fitzgerald-Moore", "N'Diaye",
)  # fmt: skip

# Written after every change to the recognizers, never used to tune them.
HELDOUT2_TEMPLATES = (
    "Triage: {E:PERSON}, arrived by ambulance {H:duration}, pain in the {H:anatomy}.",
    "Lab results for {E:PERSON} were faxed to {E:PHONE_NUMBER} on {E:DATE}.",
    "Prescription written for {E:PERSON} (DOB {E:DATE}); insurance ID {E:HEALTH_PLAN_ID}.",
    "Ms. {E:PERSON} asked us to update her address to {E:ADDRESS}, {E:POSTAL_CODE}.",
    "The courier left the {H:product} with {E:PERSON}; tracking number {E:ORDER_NUMBER}.",
    "Card ending {E:CREDIT_CARD} was declined for the {H:product}.",
    "Patient ID {E:MEDICAL_RECORD_NUMBER}, age {E:AGE_OVER_89}, {H:size} laceration on the {H:anatomy}.",
    "Implant serial {E:DEVICE_ID} registered to {E:PERSON}.",
    "Contact {E:EMAIL_ADDRESS} or call {E:PHONE_NUMBER} about account {E:ACCOUNT_NUMBER}.",
    "Driver's license {E:LICENSE_OR_CERTIFICATE}, plate {E:VEHICLE_ID}, parked {H:duration}.",
    "Reviewed by {E:PERSON} on {E:DATE}.",
    "Best wishes from {E:PERSON}, the {H:product} works great!",
    "Customer ID {E:CUSTOMER_ID} returned the {H:product} ({H:size}).",
    "Remote access from {E:IP_ADDRESS} to {E:URL} blocked.",
)
HELDOUT2_FIRST = (
    "Abebe", "Bich", "Cristina", "Dawit", "Elif", "Farida", "Goran", "Hina", "Ilkka", "Jomo", "Kiri", "Lotte",
    "Mbali", "Nuno", "Oluchi", "Pranav", "Rosalind", "Sunniva", "Tadeusz", "Yerlan",
)  # fmt: skip
HELDOUT2_LAST = (
    "Tesfaye", "Tran", "Albuquerque", "Girma", "Aydın", "Rahimi", "Nikolić", "Qureshi", "Koskinen", "Kenyatta",
    "Parata", "de Vries", "Zulu", "Magalhães", "Eze", "Iyer", "Ashworth-Cole", "Berg", "Wiśniewski", "Nurlanov",
)  # fmt: skip
EVAL_SETS = {
    "tuning": (TEMPLATES, FIRST, LAST),
    "held-out 1": (HELDOUT_TEMPLATES, HELDOUT_FIRST, HELDOUT_LAST),
    "held-out 2": (HELDOUT2_TEMPLATES, HELDOUT2_FIRST, HELDOUT2_LAST),
}

HARMLESS_KINDS = {"duration": DURATIONS, "size": SIZES, "anatomy": ANATOMY, "product": PRODUCTS}


def _obfuscate(value: str, rng: random.Random) -> str:
    """Spaced digits, fullwidth or Arabic-Indic digits, or zero-width characters inside the value."""
    style = rng.choice(["spaced", "fullwidth", "arabic", "zero-width"])
    if style == "spaced":
        return re.sub(r"(?<=\d)(?=\d)", " ", value)
    if style == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)
    if style == "arabic":
        return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in value)
    middle = len(value) // 2
    return value[:middle] + "\u200b" + value[middle:]


def build_eval_set(
    name: str = "tuning", count: int = 600, seed: int = 7, obfuscated_fraction: float = 0.1
) -> list[LabelledText]:
    """count labelled texts from one of EVAL_SETS; some digit-bearing values obfuscated."""
    rng = random.Random(seed)
    templates, *names = EVAL_SETS[name]
    texts = []
    for _ in range(count):
        template = rng.choice(templates)
        labelled = LabelledText("")
        parts, position = [], 0
        for marker in _markers(template):
            start, end, kind, label = marker
            parts.append(template[position:start])
            if kind == "E":
                value = _value(rng, label, names)
                shown = value
                if any(c.isdigit() for c in value) and rng.random() < obfuscated_fraction:
                    shown = _obfuscate(value, rng)
                labelled.pii.append((label, value, shown))
                parts.append(shown)
            else:
                phrase = rng.choice(HARMLESS_KINDS[label])
                labelled.harmless.append(phrase)
                parts.append(phrase)
            position = end
        parts.append(template[position:])
        labelled.text = "".join(parts)
        texts.append(labelled)
    return texts


def _markers(template: str) -> list[tuple[int, int, str, str]]:
    markers, start = [], template.find("{")
    while start >= 0:
        end = template.index("}", start) + 1
        kind, name = template[start + 1 : end - 1].split(":")
        markers.append((start, end, kind, name))
        start = template.find("{", end)
    return markers
