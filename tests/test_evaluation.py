from dataclasses import replace

import pytest

from evaluation.generation import generate_texts
from evaluation.leakage import identity_pairs, identity_preferences
from evaluation.utility import VqaScore, pair_scores, score_vqa
from privacy.pii.settings import PiiSettings
from vlm.collate import TextPair
from vlm.loading import load_base
from vlm.records import Record, load_dataset
from vlm.training import CAPTION_PROMPT


def test_group_counts_add_up():
    score = VqaScore()
    base = Record("s:1", None, None, "q?", "yes", ("yes", "no"), {"sex": "F"})
    for hit, sex in [(True, "F"), (False, "F"), (True, "M")]:
        score.add(replace(base, attributes={"sex": sex}), hit, 0.0)
    assert (score.correct, score.total) == (2, 3)
    assert score.group_counts(1) == {"sex": {"F": {"correct": 1, "total": 2}, "M": {"correct": 1, "total": 1}}}
    assert score.group_counts(2) == {}  # M is under 2, and F with it (else F = total - M)


def test_score_does_not_depend_on_batching(tiny_model_dir, hospital_root):
    model, processor = load_base(tiny_model_dir)
    records, _ = load_dataset(hospital_root / "server-eval")
    whole = score_vqa(model, processor, records, batch_size=16)
    single = score_vqa(model, processor, records, batch_size=1)
    assert (whole.correct, whole.total, whole.group_counts(1)) == (single.correct, single.total, single.group_counts(1))


def test_free_answers_need_an_exact_greedy_match(tiny_model_dir, hospital_root):
    model, processor = load_base(tiny_model_dir)
    records, _ = load_dataset(hospital_root / "server-eval")
    open_ended = [replace(r, choices=None, answer=r.answer + " with extra words nobody says") for r in records]
    assert score_vqa(model, processor, open_ended).correct == 0
    # The answers the model itself generates greedily are exact matches, and only they, in one mixed call.
    asked = [r for r in records if r.question is not None]
    prompts = [f"question: {r.question}" for r in asked]
    generated = generate_texts(model, processor, [r.load_image() for r in asked], prompts, max_new_tokens=24)
    own = [replace(r, choices=None, answer=text) for r, text in zip(asked, generated)]
    mixed = score_vqa(model, processor, [item for pair in zip(own, open_ended) for item in pair])
    assert (mixed.correct, mixed.total) == (len(own), 2 * len(own)) and len(own) >= 8
    assert mixed.hits == [True, False] * len(own)
    captions_only = [replace(r, question=None, answer=None) for r in records]
    assert score_vqa(model, processor, captions_only).total == 0


def test_each_answer_margin_and_likelihood_agree_with_the_choice_made_and_flip_with_the_answer(
    tiny_model_dir, hospital_root
):
    model, processor = load_base(tiny_model_dir)
    records, _ = load_dataset(hospital_root / "server-eval")
    pairs = [r for r in records if r.choices is not None and len(r.choices) == 2]
    assert len(pairs) >= 8
    score = score_vqa(model, processor, pairs)
    assert all((margin > 0) == hit for margin, hit in zip(score.margins, score.hits))
    # With two choices the margin is log(p(answer) / p(other)): the other answer's is its negative.
    swapped = [replace(r, answer=next(c for c in r.choices if c != r.answer)) for r in pairs]
    other = score_vqa(model, processor, swapped)
    assert other.margins == pytest.approx([-m for m in score.margins], abs=1e-4)
    # ... and each answer's likelihood (log p, its end included) differs from the other's by the margin.
    assert all(likelihood < 0 for likelihood in score.likelihoods)
    gaps = [mine - theirs for mine, theirs in zip(score.likelihoods, other.likelihoods)]
    assert gaps == pytest.approx(score.margins, abs=1e-4)
    open_ended = score_vqa(model, processor, [replace(r, choices=None) for r in pairs])
    assert open_ended.margins == [None] * len(pairs)
    assert open_ended.likelihoods == pytest.approx(score.likelihoods, abs=1e-4)  # the same answer, scored alone


def test_identity_preference_is_the_likelihood_gap_and_the_filter_makes_the_placeholders(tiny_model_dir, hospital_root):
    model, processor = load_base(tiny_model_dir)
    records, _ = load_dataset(hospital_root / "server-eval")
    texts = ["patient Maria Lopez, MRN H4821773, born 1961-03-14.", "referred by Dr. Whitfield; call (614) 555-0193."]
    pairs = identity_pairs(texts, PiiSettings())
    assert pairs == [
        (texts[0], "patient <PERSON>, MRN <MEDICAL_RECORD_NUMBER>, born <DATE>."),
        (texts[1], "referred by <PERSON>. <PERSON>; call <PHONE_NUMBER>."),
    ]
    preferences = identity_preferences(model, processor, records[:2], pairs)
    assert len(preferences) == 2 and all(preference != 0 for preference in preferences)
    # Swapping the two texts negates each preference; a text against itself is no preference.
    swapped = identity_preferences(model, processor, records[:2], [(filtered, text) for text, filtered in pairs])
    assert swapped == pytest.approx([-preference for preference in preferences], abs=1e-4)
    same = identity_preferences(model, processor, records[:2], [(text, text) for text, _ in pairs])
    assert same == pytest.approx([0.0, 0.0], abs=1e-4)

    # Each is log p(identity text) − log p(filtered text), alone as the caption of image i mod the images given.
    def gap(pair: tuple[str, str], record) -> float:
        image = record.load_image()
        scores = [float(pair_scores(model, processor, [TextPair(image, CAPTION_PROMPT, text)])[0][0]) for text in pair]
        return scores[0] - scores[1]

    assert preferences == pytest.approx([gap(pairs[0], records[0]), gap(pairs[1], records[1])], abs=1e-3)
    one_image = identity_preferences(model, processor, records[:1], pairs)
    assert one_image[1] == pytest.approx(gap(pairs[1], records[0]), abs=1e-3) and one_image[1] != preferences[1]
