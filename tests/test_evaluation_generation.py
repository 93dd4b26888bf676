"""Model-applying evaluation functions on the tiny-test preset."""

from dataclasses import replace

import pytest

from evaluation.generation import generate_texts
from evaluation.multiple_choice import circular_accuracy, circular_eval
from evaluation.utility import pair_scores
from vlm.collate import TextPair
from vlm.loading import load_base
from vlm.records import load_dataset
from vlm.training import CAPTION_PROMPT


def test_generate_texts_one_string_per_prompt_deterministic(tiny_model_dir, hospital_root):
    model, processor = load_base(tiny_model_dir)
    records, _ = load_dataset(hospital_root / "server-eval")
    chosen = records[:3]
    images = [record.load_image() for record in chosen]
    prompts = ["describe the image.", *(f"question: {record.question}" for record in chosen[1:])]
    first = generate_texts(model, processor, images, prompts, max_new_tokens=6, batch_size=2)
    second = generate_texts(model, processor, images, prompts, max_new_tokens=6, batch_size=2)
    assert len(first) == 3 and all(isinstance(text, str) for text in first)
    assert first == second
    # Left padding leaves each row's greedy continuation as it is alone.
    assert first == [generate_texts(model, processor, [i], [p], max_new_tokens=6)[0] for i, p in zip(images, prompts)]


def test_circular_eval_asks_every_rotation(tiny_model_dir, hospital_root, monkeypatch):
    model, processor = load_base(tiny_model_dir)
    asked: list[tuple[str, str]] = []

    def recorded(model, processor, pairs):
        asked.extend((pair.prompt, pair.target) for pair in pairs)
        return pair_scores(model, processor, pairs)

    monkeypatch.setattr("evaluation.multiple_choice.pair_scores", recorded)
    records, _ = load_dataset(hospital_root / "server-eval")
    with_choices = [record for record in records if record.choices]
    two = next(record for record in with_choices if len(record.choices) == 2)
    more = next(record for record in with_choices if len(record.choices) > 2)
    caption_only = replace(two, question=None, answer=None, choices=None)
    result = circular_eval(model, processor, [two, caption_only, more], batch_size=5)
    assert [len(picks) for picks in result.picks] == [2, len(more.choices)]  # one pick per rotation
    for picks, record in zip(result.picks, (two, more)):
        assert all(0 <= pick < len(record.choices) for pick in picks)
    assert result.answers == [two.choices.index(two.answer), more.choices.index(more.answer)]
    # By hand: rotation r lists choices[r:] + choices[:r]; a record counts when every pick names its answer.
    hits = [
        all((record.choices[r:] + record.choices[:r])[pick] == record.answer for r, pick in enumerate(picks))
        for picks, record in zip(result.picks, (two, more))
    ]
    assert result.accuracy == circular_accuracy(result.picks, result.answers) == sum(hits) / 2
    # The three-or-more-option record was asked with its options listed in each rotation, each option scored.
    q, c = more.question, more.choices
    listings = [c[r:] + c[:r] for r in range(len(c))]
    expected = [
        (f"question: {q} options: " + " ".join(f"{i + 1}. {o}" for i, o in enumerate(listed)), option)
        for listed in listings
        for option in listed
    ]
    assert asked[2 * 2 :] == expected
    # The two-option record by hand: rotation 0 lists (a, b), rotation 1 lists (b, a), each scored as score_vqa does.
    a, b = two.choices
    image = two.load_image()
    for shift, listed in enumerate(((a, b), (b, a))):
        prompt = f"question: {two.question} options: 1. {listed[0]} 2. {listed[1]}"
        scores, _ = pair_scores(model, processor, [TextPair(image, prompt, option) for option in listed])
        assert result.picks[0][shift] == int(scores.argmax())


def test_a_continuation_from_the_first_word_of_the_models_own_answer_is_the_rest_of_it(tiny_model_dir, hospital_root):
    model, processor = load_base(tiny_model_dir)
    records, _ = load_dataset(hospital_root / "server-eval")
    images = [record.load_image() for record in records[:6]]
    prompts = [CAPTION_PROMPT] * len(images)
    own = generate_texts(model, processor, images, prompts, max_new_tokens=48)
    assert all(len(text.split()) >= 2 for text in own)  # the tiny model's "a small"
    starts = [text.split()[0] for text in own]
    continued = generate_texts(model, processor, images, prompts, max_new_tokens=48, answer_starts=starts)
    assert continued == [text.split(maxsplit=1)[1] for text in own]
    with pytest.raises(ValueError, match="6 images for 6 prompts and 1 answer starts"):
        generate_texts(model, processor, images, prompts, max_new_tokens=4, answer_starts=starts[:1])
