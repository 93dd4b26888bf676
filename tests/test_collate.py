import torch
from PIL import Image

from vlm.collate import IGNORE_INDEX, TextPair, encode_batch, per_sample_loss, target_log_likelihood, to_model
from vlm.loading import load_base


def test_labels_cover_only_the_target_and_eos(tiny_model_dir):
    _, processor = load_base(tiny_model_dir)
    pairs = [
        TextPair(Image.new("RGB", (40, 40), "red"), "question: what colour?", "red"),
        TextPair(Image.new("RGB", (40, 40), "blue"), "describe the image.", "a large blue square on the left."),
    ]
    batch = encode_batch(processor, pairs)
    for row, pair in enumerate(pairs):
        target_ids = batch["input_ids"][row][batch["labels"][row] != IGNORE_INDEX]
        assert processor.tokenizer.decode(target_ids).strip() == f"{pair.target}{processor.tokenizer.eos_token}"


def test_per_sample_loss_does_not_couple_samples(tiny_model_dir):
    model, processor = load_base(tiny_model_dir)
    image = Image.new("RGB", (32, 32), "green")
    short = TextPair(image, "question: what colour?", "green")
    long = TextPair(
        image, "describe the image.", "a small green circle on the right and a large red square on the left."
    )
    alone = encode_batch(processor, [short])
    together = encode_batch(processor, [short, long])
    with torch.no_grad():
        labels_alone, labels_both = alone.pop("labels"), together.pop("labels")
        loss_alone = per_sample_loss(model(**to_model(alone, model)).logits.cpu(), labels_alone)
        loss_both = per_sample_loss(model(**to_model(together, model)).logits.cpu(), labels_both)
    torch.testing.assert_close(loss_both[0], loss_alone[0], rtol=1e-4, atol=1e-5)


def test_target_log_likelihood_and_greedy_match():
    logits = torch.full((2, 4, 5), -10.0)
    logits[0, 1, 3] = logits[0, 2, 4] = 10.0  # predicts 3 then 4
    logits[1, 1, 3] = logits[1, 2, 2] = 10.0  # predicts 3 then 2
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, 4]] * 2)
    log_likelihood, greedy = target_log_likelihood(logits, labels)
    assert greedy.tolist() == [True, False]
    assert log_likelihood[0] > log_likelihood[1]
    assert abs(float(log_likelihood[0])) < 1e-3
