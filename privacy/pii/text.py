"""Text PII: Presidio's AnalyzerEngine (offline spaCy NER + predefined and fedvlm recognizers) and AnonymizerEngine.

Speed comes from loading only spaCy's NER component, analyzing each distinct text once, batching NER with
nlp.pipe, skipping NER for texts with no capital letter, digit or '@', asking only for the entity types a
text has enough digits for, and matching every cued identifier type in one regex pass.

spaCy is imported through Presidio here, as everywhere in privacy.pii: a simulation process imports its ServerApp and
its ClientApp in two threads at once, and one thread entering spaCy directly while the other enters it from
presidio_analyzer breaks both imports (KeyError: 'spacy', or an ImportError from a partially initialized spaCy
module); through one entry, the second thread waits for the first.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import regex
import tldextract
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    DateRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MacAddressRecognizer,
    MedicalLicenseRecognizer,
    NhsRecognizer,
    SpacyRecognizer,
    UrlRecognizer,
    UsItinRecognizer,
    UsSsnRecognizer,
)
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig

from privacy.pii.burned_in import MISREAD_MIN_LENGTH, misread_of
from privacy.pii.entities import ENTITY_TYPES, MIN_DIGITS
from privacy.pii.normalize import normalize_text
from privacy.pii.recognizers import NAME_RECOGNIZER, CuedIdentifierRecognizer, pattern_recognizers
from privacy.pii.settings import PiiSettings

LANGUAGE = "en"
NER_BATCH = 64
# spaCy's DATE covers durations ("3 weeks"): dates come from patterns instead. ORG and PRODUCT are not PII.
SPACY_IGNORED = ["ORG", "NORP", "DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "PRODUCT"]
SPACY_IGNORED += ["EVENT", "WORK_OF_ART", "LAW", "LANGUAGE"]
SPACY_ENTITY_MAP = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION"}
# A text each part of the filter must find, or the filter refuses to run (fail closed).
SELF_CHECK = (
    "Patient John Smith, MRN 4471-2290, phone 555-203-4411, email js@example.org",
    {"PERSON", "EMAIL_ADDRESS"},
)


# Presidio's email validation calls tldextract, which would fetch the public suffix list: use the bundled one.
tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class PiiUnavailable(RuntimeError):
    """A part of the PII filter cannot run (model, OCR engine, recognizer, secret): nothing may train."""


class _NerOnlySpacyEngine(SpacyNlpEngine):
    """spaCy with only the components NER needs (the small English NER has its own tok2vec)."""

    def load(self) -> None:
        import spacy  # loaded by presidio_analyzer's import above (see the module docstring)

        self.nlp = {}
        for model in self.models:
            name = model["model_name"]
            if not spacy.util.is_package(name):
                raise PiiUnavailable(f"spaCy model {name!r} is not installed (pip install a package that provides it)")
            nlp = spacy.load(name, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
            if "ner" not in nlp.pipe_names:
                raise PiiUnavailable(f"spaCy model {name!r} has no NER component")
            listens = "Listener" in nlp.get_pipe_config("ner")["model"].get("tok2vec", {}).get("@architectures", "")
            if "tok2vec" in nlp.pipe_names and not listens:
                nlp.remove_pipe("tok2vec")
            self.nlp[model["lang_code"]] = nlp


def build_analyzer(spacy_model: str) -> AnalyzerEngine:
    """Presidio AnalyzerEngine on an offline spaCy model, with the predefined recognizers fedvlm needs plus its own."""
    ner = NerModelConfiguration(model_to_presidio_entity_mapping=SPACY_ENTITY_MAP, labels_to_ignore=SPACY_IGNORED)
    engine = _NerOnlySpacyEngine(
        models=[{"lang_code": LANGUAGE, "model_name": spacy_model}], ner_model_configuration=ner
    )
    engine.load()
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    for recognizer in (
        SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]),
        EmailRecognizer(),
        UrlRecognizer(),
        IpRecognizer(),
        MacAddressRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        UsItinRecognizer(),
        IbanRecognizer(),
        MedicalLicenseRecognizer(),
        NhsRecognizer(),
        DateRecognizer(supported_entity="DATE"),
        CuedIdentifierRecognizer(),
        *pattern_recognizers(),
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=[LANGUAGE])


_FULL_NAME = regex.compile(r"\p{Lu}[\p{L}'’.-]+(?:[ ](?:\p{Ll}{1,4}[ ])?\p{Lu}[\p{L}'’.-]+){1,4}")


def found_by_ner(result: RecognizerResult) -> bool:
    """Whether spaCy's NER made this finding (not a pattern or a cue)."""
    return result.recognition_metadata.get(RecognizerResult.RECOGNIZER_NAME_KEY) == SpacyRecognizer.__name__


def _ner_with_digits(text: str, result: RecognizerResult) -> bool:
    """An NER name or place holding a digit is a product or a code ("Air Max 90", "Galaxy S21"), not a person."""
    return found_by_ner(result) and any(character.isdigit() for character in text[result.start : result.end])


def _may_hold_pii(text: str) -> bool:
    return any(character.isupper() or character.isdigit() or character == "@" for character in text)


class KnownTerms:
    """Values known to identify someone at this site (names found anywhere, a record's own PII values).

    A name the analyzer finds once (after "Patient", in a DICOM header, in EXIF) is redacted wherever it
    recurs, also where NER alone would miss it. In OCR text a value also counts where it is read inside a
    word ('^' misread) or with about one misread letter in five.
    """

    MIN_LENGTH = 3

    def __init__(self, terms: Iterable[str]) -> None:
        whole = {normalize_text(term).strip() for term in terms}
        split = {part for term in whole for part in regex.split(r"[\s^]+", term) if part[:1].isupper()}
        parts = sorted((part for part in whole | split if len(part) >= self.MIN_LENGTH), key=len, reverse=True)
        alternatives = "|".join(regex.escape(part) for part in parts)
        self.words = regex.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", regex.IGNORECASE) if parts else None
        self.anywhere = regex.compile(alternatives, regex.IGNORECASE) if parts else None
        loose = {_alphanumeric(part) for part in parts}
        self.loose = sorted(part for part in loose if len(part) >= MISREAD_MIN_LENGTH)

    def results(self, text: str) -> list[RecognizerResult]:
        """Every whole-word occurrence in text, as Presidio results."""
        return self._found(self.words, text)

    def in_ocr_text(self, text: str) -> list[RecognizerResult]:
        """Every occurrence in OCR text: inside words too, and words within one misread letter in five."""
        found = self._found(self.anywhere, text)
        if self.loose:
            for word in _OCR_TOKEN.finditer(text):
                if misread_of(_alphanumeric(word.group()), self.loose):
                    found.append(RecognizerResult("PERSON", word.start(), word.end(), 0.9))
        return found

    @staticmethod
    def _found(pattern: regex.Pattern | None, text: str) -> list[RecognizerResult]:
        return [RecognizerResult("PERSON", m.start(), m.end(), 0.95) for m in pattern.finditer(text)] if pattern else []


_OCR_TOKEN = regex.compile(r"\S+")


def _alphanumeric(text: str) -> str:
    return "".join(character for character in text.lower() if character.isalnum())


@dataclass
class Redaction:
    """One text after filtering: the new text, what was found (counts by entity), and whether to drop the record."""

    text: str
    found: Counter = field(default_factory=Counter)
    drop: bool = False


class TextFilter:
    """Find and replace PII in text, per entity type as configured; fails closed if any part cannot run."""

    def __init__(self, settings: PiiSettings) -> None:
        self.settings = settings
        try:
            self.analyzer = build_analyzer(settings.spacy_model)
        except PiiUnavailable:
            raise
        except Exception as error:
            raise PiiUnavailable(f"the text analyzer cannot start ({type(error).__name__})") from None
        self.anonymizer = AnonymizerEngine()
        self.operators = {entity: self._operator(settings.operator_for(entity), entity) for entity in ENTITY_TYPES}
        self._cache: dict[str, list[RecognizerResult]] = {}
        self._self_check()

    def _operator(self, name: str, entity: str) -> OperatorConfig:
        if name == "mask":
            return OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 10**6, "from_end": False})
        if name == "hash":
            secret = os.environ.get(self.settings.hash_secret_env, "")
            if len(secret.encode()) < 16:
                variable = self.settings.hash_secret_env
                raise PiiUnavailable(f"privacy.pii operator 'hash' needs a site secret (16+ bytes) in ${variable}")
            return OperatorConfig("hash", {"hash_type": "sha256", "salt": secret})
        return OperatorConfig("replace", {"new_value": f"<{entity}>"})  # placeholder; drop records never get here

    def _self_check(self) -> None:
        text, required = SELF_CHECK
        found = {result.entity_type for result in self.analyze([text])[0]}
        missing = required - found
        if missing or not found & {"MEDICAL_RECORD_NUMBER", "ID_NUMBER"}:
            raise PiiUnavailable(f"PII self-check failed: {', '.join(sorted(missing)) or 'identifier'} not detected")

    def analyze(self, texts: list[str]) -> list[list[RecognizerResult]]:
        """Presidio results per text (normalize first); each distinct text analyzed once, NER batched."""
        pending = sorted({text for text in texts if text not in self._cache})
        candidates = [text for text in pending if _may_hold_pii(text)]
        self._cache.update({text: [] for text in pending})
        engine = self.analyzer.nlp_engine
        for start in range(0, len(candidates), NER_BATCH):
            chunk = candidates[start : start + NER_BATCH]
            for text, nlp_artifacts in engine.process_batch(chunk, LANGUAGE, batch_size=NER_BATCH):
                self._cache[text] = self._analyze_one(text, nlp_artifacts)
        return [self._cache[text] for text in texts]

    def _analyze_one(self, text: str, nlp_artifacts: NlpArtifacts) -> list[RecognizerResult]:
        digits = sum(character.isdigit() for character in text)
        found = self.analyzer.analyze(
            text,
            language=LANGUAGE,
            entities=[entity for entity in ENTITY_TYPES if MIN_DIGITS.get(entity, 0) <= digits],
            nlp_artifacts=nlp_artifacts,
            score_threshold=self.settings.score_threshold,
            allow_list=list(self.settings.allow_list) or None,
        )
        return [result for result in found if result.entity_type in ENTITY_TYPES and not _ner_with_digits(text, result)]

    def person_names(self, texts: list[str]) -> set[str]:
        """Full names found by a name cue ("Patient", "Dr.", "I'm"), for site-wide propagation.

        NER-only names and single words are not propagated: an NER false positive ("Air Max", "mug")
        would otherwise vanish from every record of the site.
        """
        names: set[str] = set()
        for text, results in zip(texts, self.analyze(texts)):
            for result in results:
                name = text[result.start : result.end].strip(" .,;:")
                recognizer = result.recognition_metadata.get(RecognizerResult.RECOGNIZER_NAME_KEY)
                if recognizer == NAME_RECOGNIZER and _FULL_NAME.fullmatch(name):
                    names.add(name)
        return names

    def values(self, texts: list[str], known: KnownTerms) -> list[str]:
        """The PII values found in normalized texts, to look for them elsewhere (never to be output)."""
        return [text[result.start : result.end] for text in texts for result in self.findings(text, known)]

    def findings(self, text: str, known: KnownTerms) -> list[RecognizerResult]:
        """Analyzer results for one normalized text plus every occurrence of a known identifying term."""
        return self.analyze([text])[0] + known.results(text)

    def redact(self, texts: list[str], known: KnownTerms | None = None) -> list[Redaction]:
        """Each text normalized and filtered (known terms redacted wherever they occur)."""
        known = known or KnownTerms(())
        normalized = [normalize_text(text) for text in texts]
        self.analyze(normalized)
        return [self._apply(text, self.findings(text, known)) for text in normalized]

    def _apply(self, text: str, found: list[RecognizerResult]) -> Redaction:
        if not found:
            return Redaction(text)
        if any(self.settings.operator_for(result.entity_type) == "drop" for result in found):
            return Redaction("", Counter(result.entity_type for result in found), drop=True)
        anonymized = self.anonymizer.anonymize(text=text, analyzer_results=found, operators=self.operators)
        return Redaction(anonymized.text, Counter(item.entity_type for item in anonymized.items))
